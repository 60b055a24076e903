// Headless Chromium for the web page's tests and benchmark: Debian's chromium driven by
// playwright-core (no browser download), with the flags that keep it off the network
// (this machine's closed network refuses its background connections); playwright gives every
// launch a fresh empty profile of its own.
import { chromium, type Browser } from "playwright-core";
import { existsSync } from "node:fs";

export const CHROMIUM = process.env.MNCNI_CHROMIUM ?? "/usr/bin/chromium";

export const hasChromium = () => existsSync(CHROMIUM);

export interface OpenBrowser {
  browser: Browser;
  close(): Promise<void>;
}

export async function openBrowser(): Promise<OpenBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
    },
  };
}
