// A webhook receiver that verifies every delivery with npm's
// standardwebhooks package (the Standard Webhooks project's library), as a
// vendor's receiver would. Started by harness.StartWebhookReceiver with the
// endpoint's secret in WEBHOOK_SECRET; prints "listening <port>", then one
// JSON line per delivery:
//   {"id", "type", "keyId", "verified", "error", "tamperedRefused", "tamperedError",
//    "replayRefused", "replayError"}
// verified: the delivery as received passes verify(); tamperedRefused: the
// same delivery with one byte of its body changed is refused; replayRefused:
// the same delivery verified ten minutes later (an old timestamp) is refused.
// It answers 204 to a verified delivery, else 400, WEBHOOK_DELAY_MS
// milliseconds after it printed the line (so that a sender killed in
// between has a delivery in flight); while the file named by WEBHOOK_DOWN
// exists it answers 503 without verifying (a receiver that is down).
"use strict";
const http = require("http");
const fs = require("fs");
const { Webhook } = require("standardwebhooks");

const wh = new Webhook(process.env.WEBHOOK_SECRET);
const down = process.env.WEBHOOK_DOWN || "";
const delay = Number(process.env.WEBHOOK_DELAY_MS || "0");

function attempt(fn) {
  try {
    fn();
    return [true, ""];
  } catch (e) {
    return [false, String(e && e.message)];
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    if (down && fs.existsSync(down)) {
      res.writeHead(503);
      res.end();
      return;
    }
    const body = Buffer.concat(chunks);
    const headers = {
      "webhook-id": req.headers["webhook-id"],
      "webhook-timestamp": req.headers["webhook-timestamp"],
      "webhook-signature": req.headers["webhook-signature"],
    };
    let event = {};
    const [verified, error] = attempt(() => {
      event = wh.verify(body, headers);
    });
    const tampered = Buffer.from(body);
    if (tampered.length > 0) {
      tampered[Math.floor(tampered.length / 2)] ^= 1;
    }
    const [tamperedOK, tamperedError] = attempt(() => wh.verify(tampered, headers));
    const realNow = Date.now;
    Date.now = () => realNow() + 10 * 60 * 1000;
    const [replayOK, replayError] = attempt(() => wh.verify(body, headers));
    Date.now = realNow;
    process.stdout.write(
      JSON.stringify({
        id: headers["webhook-id"] || "",
        type: (event && event.type) || "",
        keyId: (event && event.keyId) || "",
        verified,
        error,
        tamperedRefused: !tamperedOK,
        tamperedError,
        replayRefused: !replayOK,
        replayError,
      }) + "\n",
    );
    setTimeout(() => {
      res.writeHead(verified ? 204 : 400);
      res.end();
    }, delay);
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write("listening " + server.address().port + "\n");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
