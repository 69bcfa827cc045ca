// Debian's Chromium driven by playwright-core; installed with apt when missing, as the report
// tests do (tests/frontends/test_report.py).
import { execSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
// Flags that keep Chromium from reaching for the network and from needing a GPU or a sandbox.
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run"];

/** Chromium's path, installing it when missing; a reason to skip when that cannot be done. */
export function ensureChromium() {
  if (existsSync(CHROMIUM)) return { path: CHROMIUM };
  if (process.getuid?.() !== 0) return { skip: "chromium is not installed and installing it needs root (apt-get)" };
  try {
    execSync("apt-get update && apt-get install -y -o DPkg::Lock::Timeout=600 chromium", { stdio: "ignore", timeout: 1_800_000 });
  } catch (err) {
    return { skip: `installing chromium with apt-get failed: ${err.message.split("\n")[0]}` };
  }
  return existsSync(CHROMIUM) ? { path: CHROMIUM } : { skip: "apt-get did not install chromium" };
}

export function launch(path) {
  return chromium.launch({ executablePath: path, args: FLAGS });
}
