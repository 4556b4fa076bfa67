// Compiles AssemblyScript components in one Node process (loading the
// compiler and binaryen once instead of once per module). Usage:
//   node abi/as/build.mjs OUTDIR ENTRY.ts...
// Each ENTRY.ts becomes OUTDIR/<its folder's name>.wasm with the flags that
// every Tsubame AssemblyScript component uses (see scripts/components/as.sh).
import asc from "assemblyscript/asc";
import path from "node:path";

const [outDir, ...entries] = process.argv.slice(2);
const lib = path.relative(process.cwd(), path.join(path.dirname(new URL(import.meta.url).pathname), "assembly"));
let failed = false;
for (const entry of entries) {
  const name = path.basename(path.dirname(entry));
  const out = path.join(outDir, name + ".wasm");
  const { error, stderr } = await asc.main([
    entry, "-O3", "--runtime", "incremental", "--exportStart", "_initialize",
    "--lib", lib, "--use", "abort=~lib/tsubame/abort", "-o", out,
  ]);
  if (error) {
    console.error(`as: ${entry}: ${error.message}\n${stderr.toString()}`);
    failed = true;
    continue;
  }
  console.log(`as: ${out}`);
}
process.exit(failed ? 1 : 0);
