// `bun test/helpers/sweep-dead-runs.ts`: removes what killed test runs left (run-owner.ts), one
// line each. scripts/test.sh runs it before every run.
import { LAB_CMD } from "../lab/lab-cli.ts";
import { sweepDeadRuns } from "./run-owner.ts";

for (const line of sweepDeadRuns(LAB_CMD)) console.log(`swept a dead test run's leftover: ${line}`);
