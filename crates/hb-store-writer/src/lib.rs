//! The only code that writes the database: opening read-write, migrations, one transaction per
//! cycle, and the queue of cycles not yet written.

mod rollup;
