// ipam.resolvConf: host-local answers DNS from a resolv.conf-format file.
import { readText } from "../sys/files.ts";
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { DNS } from "../cni/types.ts";

function parseResolvConfText(text: string): DNS {
  const dns: DNS = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const [key, ...values] = line.split(/\s+/);
    if (values.length === 0) continue;
    if (key === "nameserver") (dns.nameservers ??= []).push(values[0]);
    else if (key === "domain") dns.domain = values[0];
    else if (key === "search") dns.search = values;
    else if (key === "options") (dns.options ??= []).push(...values);
  }
  return dns;
}

export function readResolvConf(path: string): DNS {
  try {
    return parseResolvConfText(readText(path));
  } catch (e) {
    throw new CniError(ErrorCode.IOFailure, `cannot read ipam.resolvConf "${path}": ${(e as Error).message}`, "", { cause: e });
  }
}
