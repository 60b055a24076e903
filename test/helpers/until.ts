// Waiting for a condition in tests of asynchronous processes: polls until it holds or the
// deadline passes (then fails with the description). A generous deadline, never a timing assertion.
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for: ${what}`);
}
