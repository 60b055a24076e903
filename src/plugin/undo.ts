// The one rollback mechanism of ADD: every side effect registers its undo right after it
// succeeds; on failure they run in reverse order, and an undo that fails does not stop
// the others (it is reported on stderr, the original error is what the runtime sees).
export class UndoStack {
  private steps: { what: string; fn: () => unknown }[] = [];

  push(what: string, fn: () => unknown): void {
    this.steps.push({ what, fn });
  }

  async run(): Promise<void> {
    for (const step of this.steps.reverse()) {
      try {
        await step.fn();
      } catch (e) {
        process.stderr.write(`mncni: rollback: cannot ${step.what}: ${(e as Error).message}\n`);
      }
    }
    this.steps = [];
  }
}
