// The owner's dashboard in a real browser: Playwright (`playwright-core`, no
// bundled browser) driving Debian's Chromium, headless, against a `purser serve`
// that crates/purser-cli/tests/dashboard.rs prepared (owner wallet with a password,
// funded; a payee wallet; an agent with two drafted mandates, a payment link and a
// payout waiting for approval). The agent's side is the real `purser` CLI, run
// here with the agent's own config file.
//
//   node dashboard.mjs CONFIG        CONFIG: a JSON file, or the JSON itself
//   PURSER_DASHBOARD_E2E=… node dashboard.mjs
//
// CONFIG = {
//   "base": "http://127.0.0.1:PORT",        the server
//   "purser": "/path/to/purser",            the binary
//   "owner": { "env": {…}, "walletId": "wal_…", "walletName": "…", "password": "…" },
//   "agent": { "env": {…}, "id": "agt_…", "name": "…" },
//   "payee": { "address": "0x…" },
//   "mandates": { "approve": { "id", "signUrl" }, "reject": { "id", "signUrl" } },
//   "payAmount": "0.25",                    what the agent pays under the approved mandate
//   "pendingApprovalId": "apr_…",           (optional) a payout waiting for the owner
//   "linkId": "lnk_…",                      (optional) a payment link of the wallet
//   "screenshots": "/dir"                   where the PNGs go
// }
//
// Every step is checked; the first failure prints `FAIL: …`, saves
// failure.png and exits 1. Success prints `PASS`.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

// axe-core checks each page against WCAG 2 A and AA (labels, contrast, names,
// landmarks) when its screenshot is taken.
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const started = Date.now();

function loadConfig() {
  const raw = process.argv[2] ?? process.env.PURSER_DASHBOARD_E2E;
  if (!raw) throw new Error('usage: node dashboard.mjs CONFIG (a JSON file or JSON text), or PURSER_DASHBOARD_E2E');
  return JSON.parse(raw.trimStart().startsWith('{') ? raw : readFileSync(raw, 'utf8'));
}

const cfg = loadConfig();
const base = cfg.base.replace(/\/$/, '');
const shots = cfg.screenshots;
mkdirSync(shots, { recursive: true });

function log(text) {
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`ok ${secs.padStart(5)}s  ${text}`);
}

function check(condition, what) {
  if (!condition) throw new Error(what);
}

function equal(actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** `$1,234.50` → atomic units (millionths), as a BigInt. */
function atomic(money) {
  const m = /^\$([0-9,]+)(?:\.([0-9]{1,6}))?$/.exec(money.trim());
  if (!m) throw new Error(`not money: ${JSON.stringify(money)}`);
  const whole = BigInt(m[1].replaceAll(',', ''));
  const fraction = BigInt((m[2] ?? '').padEnd(6, '0'));
  return whole * 1_000_000n + fraction;
}

/** Atomic units → `$0.75` (for the log). */
function usd(units) {
  const fraction = (units % 1_000_000n).toString().padStart(6, '0').replace(/0{1,4}$/, '');
  return `$${units / 1_000_000n}.${fraction.padEnd(2, '0')}`;
}

/** A decimal like `0.25` → atomic units. */
function decimal(text) {
  return atomic(`$${text}`);
}

/** Runs `purser --json …` with a principal's environment; never throws. */
function purser(who, args) {
  const env = { PATH: process.env.PATH, ...who.env };
  const run = spawnSync(cfg.purser, ['--json', ...args], { env, encoding: 'utf8', timeout: 60_000 });
  let json = null;
  try {
    json = JSON.parse(run.stdout);
  } catch {
    // left null: the caller shows the raw output
  }
  return { code: run.status, stdout: run.stdout, stderr: run.stderr, json, error: run.error };
}

function describe(run) {
  return `exit ${run.code}${run.error ? ` (${run.error.message})` : ''}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox'],
});
const desktop = { width: 1280, height: 900 };
const context = await browser.newContext({ viewport: desktop, locale: 'en-US', timezoneId: 'America/New_York' });
context.setDefaultTimeout(15_000);
const page = await context.newPage();

// Anything the browser refuses or fails to load (a CSP violation, a missing
// stylesheet or script, a script error) fails the run at the end.
const problems = [];
function watch(p) {
  p.on('pageerror', (e) => problems.push(`script error on ${p.url()}: ${e.message}`));
  p.on('console', (msg) => {
    const expected = /Failed to load resource: the server responded with a status of (401|403)/.test(msg.text())
      || /\/favicon\.ico$/.test(msg.location().url ?? '');
    if (msg.type() === 'error' && !expected) {
      problems.push(`console error on ${p.url()}: ${msg.text()} (${msg.location().url})`);
    }
  });
  p.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  p.on('response', (r) => {
    if (r.request().resourceType() !== 'document' && r.status() >= 400) {
      problems.push(`${r.status()} for ${r.url()}`);
    }
  });
}
watch(page);

async function shot(p, name) {
  await p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  await accessible(p, name);
}

/** Fails on any serious or critical WCAG 2 A/AA violation axe-core finds on the page. */
async function accessible(p, name) {
  if (!(await p.evaluate(() => typeof window.axe === 'object'))) {
    await p.evaluate(axeSource);
  }
  const result = await p.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length > 0) {
    const detail = bad
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`)
      .join('\n  ');
    throw new Error(`accessibility of ${name}:\n  ${detail}`);
  }
  // The contrast rule must have judged the page's text (not skipped it).
  check(result.passes.some((r) => r.id === 'color-contrast'), `${name}: axe-core checked the text contrast`);
  log(`${name}: no serious WCAG 2 A/AA violation (axe-core, ${result.passes.length} rules passed)`);
}

async function goto(path) {
  const response = await page.goto(`${base}${path}`);
  equal(response.status(), 200, `GET ${path} status`);
  return response;
}

async function h1() {
  return (await page.locator('h1').innerText()).trim();
}

/** Waits for the page (after a click's navigation) to be headed `text`. */
async function heading(text, what) {
  try {
    await page.locator('h1', { hasText: text }).waitFor({ timeout: 10_000 });
  } catch {
    // reported below with what the page says instead
  }
  equal(await h1(), text, what);
}

/** The dashboard's own stylesheet is applied (not blocked by the CSP). */
async function styled(p) {
  const display = await p.evaluate(() => {
    const top = document.querySelector('header.top');
    return top ? getComputedStyle(top).display : null;
  });
  equal(display, 'flex', `header.top styled on ${p.url()}`);
}

async function remaining(mandateId) {
  const text = await page
    .locator(`#active-mandates li.mandate[data-mandate-id="${mandateId}"] .remaining-amount`)
    .innerText();
  return atomic(text);
}

async function available() {
  return atomic(await page.locator('#balance-available').innerText());
}

const approve = cfg.mandates.approve;
const reject = cfg.mandates.reject;
const pay = decimal(cfg.payAmount);

try {
  // --- signed out: the review page offers to sign in; the dashboard redirects ---
  {
    const response = await page.goto(`${base}/`);
    check(new URL(page.url()).pathname === '/signin', `/ without a session ends at /signin, not ${page.url()}`);
    equal(response.status(), 200, 'the sign-in page status');
    const headers = response.headers();
    check(/default-src 'none'/.test(headers['content-security-policy'] ?? ''), 'the sign-in page carries the CSP');
    equal(headers['x-frame-options'], 'DENY', 'X-Frame-Options');
    await styled(page);
    await shot(page, 'signin');
    log('signed out: / redirects to the sign-in page (CSP, styles applied)');
  }
  {
    await page.goto(approve.signUrl);
    check(/waiting for your signature/.test(await page.locator('#mandate-status').innerText()), 'mandate status: waiting');
    equal(await page.getByRole('button', { name: 'Approve and sign' }).count(), 0, 'no Approve button when signed out');
    await page.getByRole('link', { name: 'Sign in to approve or reject' }).click();
    await page.waitForURL((u) => u.pathname === '/signin');
    log('the signUrl, signed out, shows the terms and "Sign in to approve or reject"');
  }

  // --- sign in with the password: a wrong one is refused ---
  {
    await page.keyboard.press('Tab');
    equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), 'Skip to content',
      'the first Tab reaches the skip link');
    await page.locator('#wallet_id').fill(cfg.owner.walletId);
    await page.locator('#password').fill(`${cfg.owner.password}-wrong`);
    await page.getByRole('button', { name: 'Sign in with password' }).click();
    const error = page.locator('#signin-error');
    await error.waitFor();
    check(/not valid/.test(await error.innerText()), `wrong-password error says "not valid": ${await error.innerText()}`);
    equal(new URL(page.url()).pathname, '/signin', 'still on /signin after a wrong password');
    equal(await page.locator('#wallet_id').inputValue(), cfg.owner.walletId, 'the wallet id is kept');
    await shot(page, 'signin-error');
    log('a wrong password shows an error and no session');

    // The keyboard alone signs in: type the password, press Enter.
    await page.locator('#password').focus();
    await page.keyboard.press('Control+A');
    await page.keyboard.type(cfg.owner.password);
    await page.keyboard.press('Enter');
    await page.waitForURL(approve.signUrl);
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === 'purser_session');
    check(session, 'a purser_session cookie');
    check(session.httpOnly && session.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');
    equal(await page.locator('.wallet-name').innerText(), cfg.owner.walletName, 'the wallet name in the header');
    log('the password signs in and leads back to the signUrl');
  }

  // --- approve the drafted mandate ---
  {
    await shot(page, 'mandate-review-pending');
    const title = await h1();
    check(title.includes(cfg.agent.name), `the review page names the agent: ${title}`);
    check((await page.locator('.terms').innerText()).includes('$1.00'), 'the terms show the $1.00 budget');
    await page.getByRole('button', { name: 'Approve and sign' }).click();
    await heading('Mandate signed', 'after approving');
    check(/Signature 0x[0-9a-f]+/.test(await page.locator('p.message').innerText()), 'the signature is shown');
    await page.getByRole('link', { name: 'Back' }).click();
    await page.locator('#mandate-status').waitFor();
    equal(page.url(), approve.signUrl, 'Back leads to the review page');
    check(/^Status: signed/.test(await page.locator('#mandate-status').innerText()), 'mandate status: signed');
    equal(await page.getByRole('button', { name: 'Approve and sign' }).count(), 0, 'no Approve button once signed');
    check(/\$0\.00 spent, \$0\.00 pending, \$1\.00 left/.test(await page.locator('#mandate-usage').innerText()), 'usage before paying');
    const status = purser(cfg.agent, ['mandate', 'status', approve.id]);
    check(status.code === 0 && status.json?.status === 'signed', `the agent sees the mandate signed: ${describe(status)}`);
    log('"Approve and sign" signs the mandate; the agent sees it signed');
  }

  // --- the overview before and after the agent pays ---
  let before;
  let balanceBefore;
  {
    await goto('/');
    await heading('Overview', 'the overview heading');
    before = await remaining(approve.id);
    equal(before, decimal('1'), 'remaining budget before paying');
    balanceBefore = await available();
    await page.locator('#spend-chart').waitFor();
    // dashboard.js sent the browser's zone at sign-in; times are shown in it.
    const offset = await page.evaluate(() => -new Date().getTimezoneOffset());
    const zone = `UTC${offset < 0 ? '-' : '+'}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')}:${String(Math.abs(offset) % 60).padStart(2, '0')}`;
    equal(await page.locator('p.zone').innerText(), `Times are shown in ${offset === 0 ? 'UTC' : zone}.`, 'the viewer\'s zone');
    if (cfg.pendingApprovalId) {
      check(/1 payment waiting for your approval/.test(await page.locator('#pending-approvals').innerText()), 'the pending approval notice');
    }
    log(`overview: ${usd(before)} of the mandate's budget remaining, ${usd(balanceBefore)} available`);
  }
  let reservation;
  {
    const paid = purser(cfg.agent, [
      'payout', '--to', cfg.payee.address, '--amount', cfg.payAmount, '--id', 'dashboard-payout-1', '--mandate', approve.id,
    ]);
    check(paid.code === 0, `the agent's payout: ${describe(paid)}`);
    equal(paid.json?.status, 'succeeded', `the payout settles on the ledger (${paid.stdout})`);
    reservation = paid.json.reservationId;
    check(reservation, 'the payout names its reservation');
    log(`the agent pays $${cfg.payAmount} to the payee under the mandate (purser payout)`);
  }
  {
    await page.reload();
    const after = await remaining(approve.id);
    equal(after, before - pay, 'remaining budget went down by the payment');
    equal(await available(), balanceBefore - pay, 'available balance went down by the payment');
    const row = page.locator(`#payments tr[data-payment-id="${reservation}"]`);
    await row.waitFor();
    const text = await row.innerText();
    check(text.includes(`$${cfg.payAmount}`) && text.includes('committed') && text.includes('payout') && text.includes(cfg.agent.name),
      `latest payments row: ${text}`);
    check((await page.locator('#destinations').innerText()).includes(`$${cfg.payAmount}`), 'where it went shows the amount');
    check((await page.locator('#spend-chart').innerHTML()).includes(`$${cfg.payAmount}`), 'the chart shows the day\'s spend');
    await styled(page);
    await shot(page, 'overview');
    log('reload: the payment is in the latest payments, the budget and balance went down by it');

    const owner = purser(cfg.owner, ['mandate', 'status', approve.id]);
    check(owner.code === 0, `purser mandate status: ${describe(owner)}`);
    equal(decimal(owner.json.remainingAmount), after, 'the CLI and the dashboard agree on the remaining budget');
  }

  // --- the phone-width overview ---
  {
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      storageState: await context.storageState(),
      locale: 'en-US',
      timezoneId: 'America/New_York',
    });
    const small = await phone.newPage();
    watch(small);
    const overflows = [];
    for (const path of ['/', '/agents', '/mandates', '/approvals', '/payments', '/payouts', '/links', '/audit', '/settings']) {
      await small.goto(`${base}${path}`);
      equal(new URL(small.url()).pathname, path, `phone: still signed in on ${path}`);
      if (path === '/') await shot(small, 'overview-phone');
      const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 0) {
        // Name what sticks out of the page: positioned elements, or ones no
        // scrolling box (a .table-wrap) holds.
        const wide = await small.evaluate(() => {
          const out = [...document.querySelectorAll('body *')]
            .filter((e) => Math.max(e.getBoundingClientRect().right, e.getBoundingClientRect().left + e.scrollWidth) > window.innerWidth + 1)
            .filter((e) => getComputedStyle(e).position === 'absolute' || !e.parentElement.closest('.table-wrap'));
          return out.filter((e) => !out.some((o) => o !== e && e.contains(o))).slice(0, 4)
          .map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${typeof e.className === 'string' && e.className ? `.${e.className.trim().replace(/\s+/g, '.')}` : ''} at ${Math.round(e.getBoundingClientRect().right)}px`);
        });
        await shot(small, `phone-overflow${path === '/' ? '-overview' : path.replaceAll('/', '-')}`);
        overflows.push(`${path} by ${overflow}px (${wide.join(', ')})`);
      }
    }
    check(overflows.length === 0, `at 390px these pages scroll sideways: ${overflows.join('; ')}`);
    await phone.close();
    log('390px wide: the pages fit without sideways scrolling; overview-phone.png');
  }

  // --- payments, payouts, mandates ---
  {
    await goto('/payments');
    const row = page.locator(`#payments tr[data-payment-id="${reservation}"]`);
    check(await row.count() === 1, 'the payment is on /payments');
    check((await row.innerText()).includes(`$${cfg.payAmount}`), '/payments shows its amount');
    await shot(page, 'payments');
    await page.locator('#f-kind').selectOption('payout');
    await page.locator('#f-status').selectOption('released');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL((u) => u.searchParams.get('status') === 'released');
    equal(await page.locator(`tr[data-payment-id="${reservation}"]`).count(), 0, 'filtered out by status=released');
    await page.locator('#f-status').selectOption('committed');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL((u) => u.searchParams.get('status') === 'committed');
    equal(await page.locator(`tr[data-payment-id="${reservation}"]`).count(), 1, 'kept by kind=payout, status=committed');
    log('/payments lists it; its filters keep and drop it');

    await goto('/payouts');
    const payout = await page.locator('tr[data-payout-id="dashboard-payout-1"]').innerText();
    check(payout.includes('succeeded') && payout.includes(`$${cfg.payAmount}`) && payout.includes('ledger'), `/payouts row: ${payout}`);
    await shot(page, 'payouts');
    log('/payouts shows the payout succeeded on the ledger');

    await goto('/mandates');
    const signed = await page.locator(`#mandates tr[data-mandate-id="${approve.id}"]`).innerText();
    check(signed.includes('signed') && signed.includes('$0.75') && signed.includes(`$${cfg.payAmount}`), `signed mandate row: ${signed}`);
    const pending = await page.locator(`#mandates tr[data-mandate-id="${reject.id}"]`).innerText();
    check(pending.includes('pending signature'), `pending mandate row: ${pending}`);
    await shot(page, 'mandates');
    log('/mandates shows spent and remaining, and the other mandate pending');
  }

  // --- reject the second mandate from its review page ---
  {
    await page.locator(`#mandates tr[data-mandate-id="${reject.id}"]`).getByRole('link', { name: 'Review' }).click();
    await page.waitForURL(reject.signUrl);
    await page.getByRole('button', { name: 'Reject' }).click();
    await heading('Mandate rejected', 'after rejecting');
    await page.goto(reject.signUrl);
    check(/^Status: rejected/.test(await page.locator('#mandate-status').innerText()), 'mandate status: rejected');
    equal(await page.getByRole('button', { name: 'Approve and sign' }).count(), 0, 'no Approve button once rejected');
    await goto(`/mandates?status=rejected`);
    check(await page.locator(`#mandates tr[data-mandate-id="${reject.id}"]`).count() === 1, 'the rejected filter lists it');
    check(await page.locator(`#mandates tr[data-mandate-id="${approve.id}"]`).count() === 0, 'the rejected filter drops the signed one');
    const status = purser(cfg.agent, ['mandate', 'status', reject.id]);
    check(status.code === 0 && status.json?.status === 'rejected', `the agent sees it rejected: ${describe(status)}`);
    await page.goto(approve.signUrl);
    check(/\$0\.25 spent, \$0\.00 pending, \$0\.75 left/.test(await page.locator('#mandate-usage').innerText()), 'usage after paying');
    await shot(page, 'mandate-review');
    log('"Reject" rejects the second mandate; the signed one\'s review page shows its usage');
  }

  // --- approvals, links ---
  {
    await goto('/approvals');
    if (cfg.pendingApprovalId) {
      const item = await page.locator(`#approval-queue li[data-approval-id="${cfg.pendingApprovalId}"]`).innerText();
      check(item.includes(cfg.agent.name), `the approval queue names the agent: ${item}`);
    }
    await shot(page, 'approvals');
    await goto('/links');
    if (cfg.linkId) {
      await page.locator(`#links tr[data-link-id="${cfg.linkId}"] a`).click();
      await page.waitForURL(`${base}/links/${cfg.linkId}`);
      check((await page.locator('dl').innerText()).includes('/pay/'), 'the link page shows its pay URL');
      await goto('/links');
    }
    await shot(page, 'links');
    log('/approvals lists the waiting payout; /links and a link\'s page render');
  }

  // --- settings: save a policy ---
  {
    await goto('/settings');
    await page.locator('#per_payment_cap').fill('5');
    await page.locator('#denied_hosts').fill('casino.example');
    await page.getByRole('button', { name: 'Save policy' }).click();
    await heading('Policy saved', 'after saving the policy');
    await goto('/settings');
    equal(await page.locator('#per_payment_cap').inputValue(), '5', 'the saved per-payment cap');
    equal((await page.locator('#denied_hosts').inputValue()).trim(), 'casino.example', 'the saved denied host');
    await shot(page, 'settings');
    // A form post without the session's CSRF token is refused.
    const forged = await context.request.post(`${base}/settings`, {
      form: { csrf: 'not-the-token', form_id: 'x', monthly_cap: '', per_payment_cap: '1', auto_approve_up_to: '', denied_hosts: '', denied_addresses: '' },
      maxRedirects: 0,
    });
    equal(forged.status(), 403, 'a POST without the CSRF token');
    await page.reload();
    equal(await page.locator('#per_payment_cap').inputValue(), '5', 'the forged post changed nothing');
    log('/settings saves the policy; a post without the CSRF token is refused (403)');
  }

  // --- revoke the agent: its next payment is refused ---
  {
    await goto('/agents');
    const row = page.locator(`#agents tr[data-agent-id="${cfg.agent.id}"]`);
    check((await row.innerText()).includes('active'), 'the agent is active');
    await row.getByRole('link', { name: 'Revoke…' }).click();
    await page.waitForURL(`${base}/agents/${cfg.agent.id}/revoke`);
    await heading(`Revoke ${cfg.agent.name}?`, 'the confirmation page');
    await shot(page, 'agent-revoke');
    await page.locator('#confirm-revoke').click();
    await heading('Agent revoked', 'after confirming');
    await goto('/agents');
    const revoked = await page.locator(`#agents tr[data-agent-id="${cfg.agent.id}"]`).innerText();
    check(revoked.includes('revoked'), `the agent row says revoked: ${revoked}`);
    equal(await page.locator(`#agents tr[data-agent-id="${cfg.agent.id}"] a.danger`).count(), 0, 'no Revoke link on a revoked agent');
    log('Agents → Revoke… → confirm revokes the agent');

    const refused = purser(cfg.agent, [
      'payout', '--to', cfg.payee.address, '--amount', '0.1', '--id', 'dashboard-payout-2', '--mandate', approve.id,
    ]);
    check(refused.code !== 0, `the revoked agent's payout must fail: ${describe(refused)}`);
    check(`${refused.stdout}${refused.stderr}`.includes('agent_revoked'), `the refusal says agent_revoked: ${describe(refused)}`);
    await goto('/');
    equal(await page.locator(`#active-mandates li.mandate[data-mandate-id="${approve.id}"]`).count(), 0,
      'a revoked agent\'s mandate is no longer listed as active');
    await goto(`/mandates/${approve.id}/review`);
    const usage = await page.locator('#mandate-usage').innerText();
    check(usage.includes(`${usd(before - pay)} left`), `the refused payment changed nothing: ${usage}`);
    check((await page.locator('#mandate-status').innerText()).includes('agent was revoked'), 'the mandate page says its agent was revoked');
    log('the revoked agent\'s next payout is refused with agent_revoked; nothing moved; its mandate is shown as stopped');
  }

  // --- add an agent from the dashboard: the credential is shown once ---
  {
    await goto('/agents');
    await page.locator('#agent-name').fill('Browser-added bot');
    await page.getByRole('button', { name: 'Add agent' }).click();
    const credential = (await page.locator('#agent-credential').innerText()).trim();
    check(credential.length > 20, 'a credential is shown');
    const added = (await page.locator('#agent-id').innerText()).trim();
    check(await page.locator(`#agents tr[data-agent-id="${added}"]`).count() === 1, 'the new agent is listed');
    await shot(page, 'agents');
    await goto('/agents');
    equal(await page.locator('#agent-credential').count(), 0, 'the credential is not shown again');
    log('"Add agent" shows the new agent\'s credential once');
  }

  // --- the audit log ---
  {
    await goto('/audit');
    const status = page.locator('#chain-status');
    check(await status.evaluate((e) => e.classList.contains('ok')), 'the chain status is ok');
    check(/^Chain verified/.test(await status.innerText()), `chain status: ${await status.innerText()}`);
    const table = await page.locator('#audit').innerText();
    for (const action of ['mandate.signed', 'mandate.rejected', 'agent.revoked']) {
      check(table.includes(action), `the audit log lists ${action}`);
    }
    await shot(page, 'audit');
    log('/audit: "Chain verified", with the signing, the rejection and the revocation');
  }

  // --- sign out ---
  {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/signin');
    await page.goto(`${base}/payments`);
    equal(new URL(page.url()).pathname, '/signin', 'signed out: /payments redirects to sign in');
    equal(new URL(page.url()).searchParams.get('next'), '/payments', 'the sign-in page keeps where to go next');
    log('"Sign out" ends the session');
  }

  check(problems.length === 0, `the browser reported problems:\n  ${problems.join('\n  ')}`);
  await browser.close();
  console.log(`PASS: dashboard in ${(Date.now() - started) / 1000}s, screenshots in ${shots}`);
} catch (error) {
  console.log(`FAIL: ${error.message}`);
  console.log(`  at ${page.url()}`);
  if (problems.length) console.log(`  browser problems:\n    ${problems.join('\n    ')}`);
  await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
  await browser.close().catch(() => {});
  process.exit(1);
}
