// Test helper, run inside namespaces: `serve PORT` answers each TCP connection with the
// peer's address; `ask HOST PORT` prints the answer. Shows whether traffic was NATed.
const [mode, a, b] = process.argv.slice(2);
if (mode === "serve") {
  Bun.listen({
    hostname: "0.0.0.0",
    port: Number(a),
    socket: { open(s) { s.end(`${s.remoteAddress}\n`); }, data() {} },
  });
} else if (mode === "ask") {
  let got = "";
  await Bun.connect({
    hostname: a!,
    port: Number(b),
    socket: { data(_s, d) { got += d.toString(); }, close() { process.stdout.write(got); }, error() {} },
  });
} else {
  console.error("usage: whoami.ts serve PORT | ask HOST PORT");
  process.exit(2);
}
export {};
