// `make depcheck`: dependency-cruiser over src/ with the rules of .dependency-cruiser.cjs (the
// layer order of docs/architecture.md, no circle, agent/policy's one way in). Through the
// library rather than its command line for one reason: a cruise that found no module must
// fail. dependency-cruiser parses TypeScript with the TypeScript it finds beside it, and with
// TypeScript 7 it cruised 0 modules and reported no violation, so this package pins its own
// TypeScript 5; should that ever break again, the check says so instead of passing.
// It runs under the repository's bun: dependency-cruiser asks for node >= 22 and the test
// machines have node 20.
// Usage: bun tools/depcruise/check.mjs [CONFIG [DIR...]]   (run from the repository root)
import { resolve } from "node:path";
import { cruise, format } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";

const [config = ".dependency-cruiser.cjs", ...dirs] = process.argv.slice(2);
const options = await extractDepcruiseOptions(resolve(config));
const tsConfigFile = options.tsConfig?.fileName;
const tsConfig = tsConfigFile ? extractTSConfig(tsConfigFile) : undefined;
const { output: result } = await cruise(dirs.length ? dirs : ["src"], options, {}, { tsConfig });
const { output, exitCode } = await format(result, { outputType: "err" });
process.stdout.write(String(output));
if (result.summary.totalCruised === 0) {
  process.stderr.write(`depcheck: dependency-cruiser cruised no module in ${dirs.join(" ") || "src"}: nothing was checked (can it parse TypeScript? tools/depcruise pins TypeScript 5)\n`);
  process.exit(1);
}
process.exit(exitCode);
