// Reference x402 paying client (@x402/fetch + @x402/evm exact client scheme).
//
// Env: URL (full URL), METHOD (GET), BODY (optional JSON string, sent as
//      application/json), PAYER_KEY (0x.. key), NETWORK (eip155:31337),
//      ASSET (token address the client may pay with; unset = spend controls off).
// Stdout: exactly ONE JSON line:
//   {"status":<int>,"body":<response text>,"paymentResponse":<decoded JSON|null>,
//    "paymentHeader":{"name":"PAYMENT-SIGNATURE"|"X-PAYMENT","value":<string>}|null}
// Exit 0 whenever the HTTP exchange completed (any status); 1 on an exception.
import { decodePaymentResponseHeader, wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";
import { env } from "./lib/lifecycle.mjs";

// Header names the x402 HTTP client may use to carry a payment (v2, v1).
const PAYMENT_HEADERS = ["PAYMENT-SIGNATURE", "X-PAYMENT"];
const RESPONSE_HEADERS = ["PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE"];

async function main() {
  const url = env("URL");
  const method = env("METHOD", "GET").toUpperCase();
  const bodyRaw = process.env.BODY;
  const payerKey = env("PAYER_KEY");
  const network = env("NETWORK", "eip155:31337");
  const asset = process.env.ASSET;

  const client = new x402Client()
    .register(network, new ExactEvmScheme(privateKeyToAccount(payerKey)))
    .setSpendControls(asset ? { allowedAssets: [{ network, asset }] } : false);

  // Record the payment header of the (last) request that carried one.
  let paymentHeader = null;
  const recordingFetch = async (input, init) => {
    // Read headers without constructing a Request from `input` (that would
    // consume a request body).
    const headers = input instanceof Request ? input.headers : new Headers(init?.headers);
    for (const name of PAYMENT_HEADERS) {
      const value = headers.get(name);
      if (value) {
        paymentHeader = { name, value };
        break;
      }
    }
    return fetch(input, init);
  };

  const init = { method };
  if (bodyRaw !== undefined && bodyRaw !== "") {
    JSON.parse(bodyRaw); // fail early on invalid JSON
    init.body = bodyRaw;
    init.headers = { "content-type": "application/json" };
  }

  const res = await wrapFetchWithPayment(recordingFetch, client)(url, init);
  const text = await res.text();

  let paymentResponse = null;
  for (const name of RESPONSE_HEADERS) {
    const raw = res.headers.get(name);
    if (raw) {
      try {
        paymentResponse = decodePaymentResponseHeader(raw);
      } catch (err) {
        console.error(`[client] could not decode ${name} (${raw}): ${err?.message ?? err}`);
      }
      break;
    }
  }

  process.stdout.write(
    JSON.stringify({ status: res.status, body: text, paymentResponse, paymentHeader }) + "\n",
  );
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (err) => {
    console.error("[client] error:", err?.stack ?? err);
    process.exitCode = 1;
  },
);
