// A webhook sink on 127.0.0.1: records every JSON body posted to it and answers each post with
// the next status of a script (then 200), so retries can be provoked.

import http from "node:http";

export async function startSink(statuses = []) {
  const script = [...statuses];
  const posted = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      const status = script.length > 0 ? script.shift() : 200;
      posted.push({ path: req.url, contentType: req.headers["content-type"], body, status });
      res.writeHead(status, { "content-type": "text/plain" }).end("ok");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    posted,
    /** Titles of the posted alerts containing `word`. */
    titles: (word) =>
      posted
        .map((p) => (typeof p.body === "object" && p.body !== null ? p.body.title : undefined))
        .filter((t) => typeof t === "string" && t.includes(word)),
    /** Queue more statuses to answer with. */
    answerWith: (...more) => script.push(...more),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
