// A .proto imported `with { type: "text" }`: its text, embedded in the compiled executable.
declare module "*.proto" {
  const text: string;
  export default text;
}
