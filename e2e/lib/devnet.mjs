// Local devnet helpers: free ports, anvil, TestUSDC deploy/mint/balances,
// spawning the peer scripts and waiting for their READY line, and cleanup.
import { spawn } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import net from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createPublicClient, createWalletClient, defineChain, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";

export const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const CONTRACTS_DIR = resolve(E2E_DIR, "..", "contracts");
export const ANVIL_BIN = join(CONTRACTS_DIR, "node_modules", ".bin", "anvil");
export const TEST_USDC_ARTIFACT = join(CONTRACTS_DIR, "out", "TestUSDC.sol", "TestUSDC.json");

/** Anvil's default dev keys (mnemonic "test test ... junk"). */
export const DEV_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];
export const addressOf = (key) => privateKeyToAccount(key).address;

// ---------------------------------------------------------------- children

const children = new Set();

function track(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Terminate one child: SIGTERM, then SIGKILL after `graceMs`. */
export function killChild(child, graceMs = 3000) {
  return new Promise((resolveKill) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolveKill();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {}
    }, graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolveKill();
    });
    try {
      child.kill("SIGTERM");
    } catch {
      clearTimeout(timer);
      resolveKill();
    }
  });
}

/** Terminate every child started through this module. */
export async function killAll() {
  await Promise.all([...children].map((c) => killChild(c)));
}

let exitHooksInstalled = false;
/** Make sure children die with us (normal exit, Ctrl-C, SIGTERM, crash). */
export function installExitHooks() {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on("exit", () => {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch {}
    }
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(sig, () => {
      killAll().finally(() => process.exit(130));
    });
  }
}

// ---------------------------------------------------------------- ports

/** Ask the OS for a currently free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- anvil

async function rpc(url, method, params = []) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const json = await res.json();
  if (json.error) throw new Error(`${method}: ${JSON.stringify(json.error)}`);
  return json.result;
}

/**
 * Start anvil on 127.0.0.1 and wait until eth_chainId answers.
 * Returns { child, port, rpcUrl, chainId }.
 */
export async function startAnvil({ port, chainId = 31337, bin = ANVIL_BIN, timeoutMs = 30_000 } = {}) {
  if (!existsSync(bin)) {
    throw new Error(`anvil not found at ${bin} (run contracts/ci.sh or npm ci in contracts/)`);
  }
  port ??= await freePort();
  const child = track(
    spawn(bin, ["--host", "127.0.0.1", "--port", String(port), "--chain-id", String(chainId), "--silent"], {
      stdio: ["ignore", "ignore", "pipe"],
    }),
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const rpcUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`anvil exited early (${child.exitCode ?? child.signalCode}): ${stderr}`);
    }
    try {
      const id = await rpc(rpcUrl, "eth_chainId");
      if (Number(id) === chainId) break;
      throw new Error(`unexpected chain id ${id}`);
    } catch (err) {
      if (Date.now() > deadline) {
        await killChild(child);
        throw new Error(`anvil did not answer eth_chainId within ${timeoutMs} ms: ${err.message}`);
      }
      await sleep(100);
    }
  }
  return { child, port, rpcUrl, chainId };
}

// ---------------------------------------------------------------- token

export function devChain(rpcUrl, chainId = 31337) {
  return defineChain({
    id: chainId,
    name: `devnet-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

export function loadTestUsdcArtifact(path = TEST_USDC_ARTIFACT) {
  if (!existsSync(path)) {
    throw new Error(`TestUSDC artifact not found at ${path} (run contracts/ci.sh first)`);
  }
  const json = JSON.parse(readFileSync(path, "utf8"));
  const bytecode = json.bytecode?.object ?? json.bytecode;
  if (typeof bytecode !== "string" || !bytecode.startsWith("0x") || bytecode.length < 4) {
    throw new Error(`artifact ${path} has no deployable bytecode`);
  }
  return { abi: json.abi, bytecode };
}

function clients(rpcUrl, key, chainId) {
  const chain = devChain(rpcUrl, chainId);
  const transport = http(rpcUrl);
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 50 });
  const walletClient = key
    ? createWalletClient({ account: privateKeyToAccount(key), chain, transport, pollingInterval: 50 })
    : null;
  return { publicClient, walletClient };
}

/** Deploy TestUSDC (constructor `string name_`) with `key`; returns its address. */
export async function deployTestUsdc({ rpcUrl, key = DEV_KEYS[0], name = "USD Coin", chainId = 31337 }) {
  const { abi, bytecode } = loadTestUsdcArtifact();
  const { publicClient, walletClient } = clients(rpcUrl, key, chainId);
  const hash = await walletClient.deployContract({ abi, bytecode, args: [name] });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success" || !receipt.contractAddress) {
    throw new Error(`TestUSDC deployment failed: ${hash}`);
  }
  return receipt.contractAddress;
}

/** `token.mint(to, amount)` from `key` (the token owner = deployer). */
export async function mint({ rpcUrl, token, to, amount, key = DEV_KEYS[0], chainId = 31337 }) {
  const { abi } = loadTestUsdcArtifact();
  const { publicClient, walletClient } = clients(rpcUrl, key, chainId);
  const hash = await walletClient.writeContract({
    address: token,
    abi,
    functionName: "mint",
    args: [to, BigInt(amount)],
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`mint failed: ${hash}`);
  return hash;
}

const ERC20_BALANCE_ABI = [
  {
    type: "function",
    name: "balanceOf",
    stateMutability: "view",
    inputs: [{ name: "account", type: "address" }],
    outputs: [{ name: "", type: "uint256" }],
  },
];

/** ERC-20 balance of `address` as a bigint. */
export async function balanceOf({ rpcUrl, token, address, chainId = 31337 }) {
  const { publicClient } = clients(rpcUrl, null, chainId);
  return publicClient.readContract({
    address: token,
    abi: ERC20_BALANCE_ABI,
    functionName: "balanceOf",
    args: [address],
  });
}

// ---------------------------------------------------------------- scripts

function prefixLines(prefix, stream, sink) {
  let buf = "";
  stream.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      sink.write(`${prefix}${buf.slice(0, i)}\n`);
      buf = buf.slice(i + 1);
    }
  });
  stream.on("end", () => {
    if (buf) sink.write(`${prefix}${buf}\n`);
  });
}

/**
 * Spawn `node <script>` (path relative to e2e/) with `env` added to the
 * current environment, and wait for its `READY <url>` stdout line.
 * Stderr is forwarded to our stderr with a `[name] ` prefix.
 * Returns { child, url }.
 */
export function spawnReady(script, env, { name = script, timeoutMs = 30_000 } = {}) {
  const child = track(
    spawn(process.execPath, [join(E2E_DIR, script)], {
      cwd: E2E_DIR,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  prefixLines(`[${name}] `, child.stderr, process.stderr);
  return new Promise((resolveReady, reject) => {
    let out = "";
    let ready = false;
    const timer = setTimeout(() => {
      killChild(child);
      reject(new Error(`${name}: no READY line within ${timeoutMs} ms (stdout: ${JSON.stringify(out)})`));
    }, timeoutMs);
    child.stdout.on("data", (d) => {
      if (ready) {
        process.stderr.write(`[${name} stdout] ${d}`);
        return;
      }
      out += d;
      const m = /^READY (http:\/\/\S+)\r?\n/m.exec(out);
      if (m) {
        ready = true;
        clearTimeout(timer);
        resolveReady({ child, url: m[1] });
      }
    });
    child.once("exit", (code, sig) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`${name} exited before READY (${code ?? sig}); stdout: ${JSON.stringify(out)}`));
      }
    });
  });
}

/**
 * Run `node <script>` to completion; returns { code, stdout, stderr, json }
 * where json is the parsed single stdout line (or null if it does not parse).
 */
export function runScript(script, env, { name = script, timeoutMs = 60_000 } = {}) {
  const child = track(
    spawn(process.execPath, [join(E2E_DIR, script)], {
      cwd: E2E_DIR,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolveRun, reject) => {
    const timer = setTimeout(() => {
      killChild(child);
      reject(new Error(`${name} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once("close", (code) => {
      clearTimeout(timer);
      let json = null;
      const lines = stdout.split("\n").filter((l) => l.trim() !== "");
      if (lines.length === 1) {
        try {
          json = JSON.parse(lines[0]);
        } catch {}
      }
      resolveRun({ code, stdout, stderr, json });
    });
  });
}
