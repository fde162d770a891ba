// Shared process-lifecycle helpers for the long-running peers
// (server.mjs, facilitator.mjs).

/**
 * Read an env var, falling back to `dflt`; throws when required and missing.
 */
export function env(name, dflt) {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (dflt === undefined) throw new Error(`missing required env var ${name}`);
    return dflt;
  }
  return v;
}

/** Parse PORT (0 = let the OS pick a free port). */
export function envPort(name = "PORT", dflt = "0") {
  const raw = env(name, dflt);
  const port = Number.parseInt(raw, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || String(port) !== raw.trim()) {
    throw new Error(`invalid ${name}: ${raw}`);
  }
  return port;
}

/**
 * Listen on 127.0.0.1:`port` and print exactly one `READY http://127.0.0.1:<port>`
 * line to stdout once the socket is bound.
 */
export function listenAndAnnounce(server, port) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      const actual = server.address().port;
      const url = `http://127.0.0.1:${actual}`;
      // process.stdout.write to a pipe is asynchronous in Node; the callback
      // fires once the line has been handed to the OS.
      process.stdout.write(`READY ${url}\n`, () => resolve(url));
    });
  });
}

/**
 * Exit cleanly on SIGTERM/SIGINT (close the listener and any keep-alive
 * connections, then exit 0). With EXIT_ON_STDIN_CLOSE=1 the process also exits
 * when its stdin reaches EOF, so a parent that holds a stdin pipe (e.g. a Rust
 * test holding `Stdio::piped()`) cannot leak this process if it dies.
 */
export function installShutdown(server, name) {
  let closing = false;
  const shutdown = (why) => {
    if (closing) return;
    closing = true;
    const timer = setTimeout(() => process.exit(0), 2000);
    timer.unref();
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  if (process.env.EXIT_ON_STDIN_CLOSE === "1") {
    process.stdin.on("end", () => shutdown("stdin closed"));
    process.stdin.on("error", () => shutdown("stdin error"));
    process.stdin.resume();
  }
  process.on("uncaughtException", (err) => {
    console.error(`[${name}] uncaught exception:`, err);
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => {
    console.error(`[${name}] unhandled rejection:`, err);
  });
}

/** Parse a CAIP-2 `eip155:<chainId>` network id into its numeric chain id. */
export function evmChainId(network) {
  const m = /^eip155:(\d+)$/.exec(network);
  if (!m) throw new Error(`NETWORK must look like eip155:<chainId>, got ${network}`);
  return Number(m[1]);
}
