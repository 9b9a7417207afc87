// The web dashboard in a real browser (Debian's chromium, headless, driven by puppeteer-core):
// three real managers, two of them serving --ui-addr, and hollow nodes standing for the lab's hosts
// (each in a process of its own, so that one can be powered off). The page is opened with a
// `shoal ui` link, shows the nodes and a service, and follows a scale and a node's death without
// a reload; its buttons scale and drain through the control API. SHOAL_UI_SCREENSHOT=docs/img/dashboard.png keeps the dashboard's picture there.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { freePort } from '@shoal/raft/testing';
import { HollowCluster } from '../helpers/hollow-cluster.js';
import { shoalCli } from '../helpers/cli.js';
import { ROOT, eventually } from '../helpers/shoald.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WAIT_MS = 60_000;

const h = new HollowCluster();
let browser: Browser;
let page: Page;
let uiAddr = '';
let followerUiAddr = '';

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: scripts/test-env.sh installs Debian's chromium`);
  assert.ok(existsSync(join(ROOT, 'packages/daemon/dist/web/app.js')), 'the dashboard is not bundled: npm run build (scripts/bundle-ui.mjs)');
  uiAddr = `127.0.0.1:${await freePort()}`;
  followerUiAddr = `127.0.0.1:${await freePort()}`;
  // Three managers, as HollowCluster.start makes them, two of them serving a dashboard.
  const m1 = await h.c.init('m1', ['--dispatcher-heartbeat', '1s', '--ui-addr', uiAddr]);
  const m2 = await h.c.join('m2', m1, 'manager', '127.0.0.1', {}, ['--ui-addr', followerUiAddr]);
  await m2.ready();
  const m3 = await h.c.join('m3', m1, 'manager');
  await m3.ready();
  h.managers = [m1, m2, m3];
  await eventually('3 voters', async () => {
    const st = await m1.call<{ members: { raftRole: string }[] }>('ClusterStatus');
    return st.members.length === 3 && st.members.every((m) => m.raftRole !== 'learner');
  });
  // The hollow nodes run every task.
  for (const v of (await h.nodes()).filter((n) => n.node.spec.role === 'manager')) await m1.call('UpdateNode', { node: v.node.id, availability: 'drain' });
  // One node a process: killing a process is powering off one host.
  await h.addNodes(3, 1);
  await h.workersIn('ready', 3, WAIT_MS);
  await h.any().call('CreateService', { spec: { name: 'web', image: 'nginx:alpine', replicas: 3 } });
  // A task a node: the host port is the node's own (the hollow nodes bind nothing).
  await h.any().call('CreateService', { spec: { name: 'edge', image: 'haproxy:lts', mode: 'global', ports: [{ targetPort: 80, publishedPort: 8080, protocol: 'tcp', publishMode: 'host' }] } });
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'],
    // The cluster's CA signed the manager's certificate: the browser has never heard of it.
    acceptInsecureCerts: true,
    defaultViewport: { width: 1400, height: 1000 },
  });
  page = await browser.newPage();
});

after(async () => {
  await browser?.close();
  await h.stop();
});

/** Waits until `fn` (run in the page) returns true. */
async function inPage(what: string, fn: string): Promise<void> {
  try {
    await page.waitForFunction(fn, { timeout: WAIT_MS, polling: 200 });
  } catch (err) {
    const body = await page.evaluate('document.body.innerText').catch(() => '');
    throw new Error(`the page never showed ${what}: ${(err as Error).message}\n--- page text ---\n${String(body).slice(0, 3000)}`);
  }
}

const serviceRow = (name: string, running: number, desired: number) =>
  `(() => { const r = document.querySelector('tr[data-service="${name}"]'); return !!r && r.dataset.running === '${running}' && r.dataset.desired === '${desired}'; })()`;

test('a `shoal ui` link opens the dashboard: nodes, managers and a service', async () => {
  const m1 = h.managers[0]!;
  const r = await shoalCli(m1, ['ui', '-q']);
  assert.equal(r.code, 0, r.stderr);
  const url = r.stdout.trim();
  assert.match(url, new RegExp(`^https://${uiAddr.replace(/\./g, '\\.')}/#token=[\\w-]{20,}$`));
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await inPage('6 nodes ready', `document.querySelectorAll('tr[data-node][data-state="ready"]').length === 6`);
  await inPage('the service with 3 of 3 running', serviceRow('web', 3, 3));
  await inPage('the global service on every node', serviceRow('edge', 3, 3));
  await inPage('the live link', `document.querySelector('[data-testid=link]')?.textContent === 'live'`);
  await inPage('the Raft leader', `!!document.querySelector('[data-testid=leader]') && /^m[123]$/.test(document.querySelector('[data-testid=leader]').textContent)`);
  // The token left the address bar, and the page stays this one document from here on.
  assert.equal(new URL(page.url()).hash, '');
  await page.evaluate('window.__sameDocument = true');

  // A link works once.
  const other = await browser.createBrowserContext();
  try {
    const p2 = await other.newPage();
    await p2.goto(url, { waitUntil: 'domcontentloaded' });
    await p2.waitForSelector('[data-testid=problem]', { timeout: WAIT_MS });
    assert.match(await p2.$eval('[data-testid=problem]', (e) => e.textContent ?? ''), /used already or has expired/);
  } finally {
    await other.close();
  }
});

test('the API refuses a caller with neither a session nor an admin certificate', async () => {
  const other = await browser.createBrowserContext();
  try {
    const p2 = await other.newPage();
    const res = await p2.goto(`https://${uiAddr}/api/state`);
    assert.equal(res?.status(), 401);
  } finally {
    await other.close();
  }
});

test('a scale shows without a reload', async () => {
  await h.any().call('ScaleService', { service: 'web', replicas: 5 });
  await inPage('the service with 5 of 5 running', serviceRow('web', 5, 5));
  await inPage('the scale in the event panel', `document.querySelector('[data-testid=events]').textContent.includes('replicas 3 → 5')`);
  assert.equal(await page.evaluate('window.__sameDocument'), true, 'the page was reloaded');
});

test('the buttons scale a service and drain a node through the control API, and show its refusals', async () => {
  await page.click('tr[data-service="web"]');
  await page.waitForSelector('[data-testid=scale]');
  await page.click('[data-testid=replicas-input]', { clickCount: 3 });
  await page.type('[data-testid=replicas-input]', '6');
  await page.click('[data-testid=scale]');
  await inPage('the scale done', `document.querySelector('[data-testid=action-result]')?.textContent === 'scaled web to 6: done'`);
  await inPage('the service with 6 of 6 running', serviceRow('web', 6, 6));
  // The control API's own refusal, word for word: web was never updated, so has no spec to go back to.
  await page.click('[data-testid=rollback]');
  await inPage('the refused rollback', `/previous/.test(document.querySelector('[data-testid=action-result].error')?.textContent ?? '')`);

  const id = h.fleets[2]!.nodeIds[0]!;
  await page.click(`tr[data-id="${id}"]`);
  await page.waitForSelector('[data-testid=availability-drain]');
  await page.click('[data-testid=availability-drain]');
  await inPage('the node drained', `document.querySelector('tr[data-id="${id}"]')?.dataset.availability === 'drain'`);
  await inPage('its tasks moved: 6 of 6 on the others', `${serviceRow('web', 6, 6)} && document.querySelector('tr[data-id="${id}"] td:nth-child(8)')?.textContent === '0'`);
  await page.click('[data-testid=availability-active]');
  await inPage('the node active again', `document.querySelector('tr[data-id="${id}"]')?.dataset.availability === 'active'`);
  await inPage('the global service back on every node', serviceRow('edge', 3, 3));
  assert.equal(await page.evaluate('window.__sameDocument'), true, 'the page was reloaded');
  // What is left selected is the node; the picture shows the whole cluster.
  await page.click(`tr[data-id="${id}"]`);
});

test('a node powered off shows down, and its tasks move, without a reload', async () => {
  const fleet = h.fleets[0]!;
  const id = fleet.nodeIds[0]!;
  const host = await page.$eval(`tr[data-id="${id}"]`, (e) => e.getAttribute('data-node') ?? '');
  await fleet.kill();
  await inPage(`${host} down`, `document.querySelector('tr[data-id="${id}"]')?.dataset.state === 'down'`);
  await inPage('6 of 6 running again, on the nodes left', serviceRow('web', 6, 6));
  await inPage('the global service on the nodes left', serviceRow('edge', 2, 2));
  await inPage(`${host} down in the event panel`, `document.querySelector('[data-testid=events]').textContent.includes('${host} state ready → down')`);
  assert.equal(await page.evaluate('window.__sameDocument'), true, 'the page was reloaded');
  const shot = process.env.SHOAL_UI_SCREENSHOT;
  if (shot) {
    const path = resolve(ROOT, shot);
    mkdirSync(dirname(path), { recursive: true });
    await page.screenshot({ path: path as `${string}.png`, fullPage: true });
  }
});

test("a follower's dashboard shows the same cluster, from its own copy of the store", async () => {
  const leader = await page.$eval('[data-testid=leader]', (e) => e.textContent ?? '');
  const m2 = h.managers[1]!;
  const r = await shoalCli(m2, ['ui', '-q']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.trim().startsWith(`https://${followerUiAddr}/#token=`), r.stdout);
  const p2 = await browser.newPage();
  try {
    page = p2;
    await p2.goto(r.stdout.trim(), { waitUntil: 'domcontentloaded' });
    await inPage('5 of 6 nodes ready', `document.querySelectorAll('tr[data-node][data-state="ready"]').length === 5 && document.querySelectorAll('tr[data-node]').length === 6`);
    await inPage('the services as the first page has them', `${serviceRow('web', 6, 6)} && ${serviceRow('edge', 2, 2)}`);
    await inPage('the same leader', `document.querySelector('[data-testid=leader]')?.textContent === '${leader}'`);
    assert.match(await p2.evaluate('document.querySelector("header").textContent') as string, /via manager m2/);
  } finally {
    await p2.close();
  }
});
