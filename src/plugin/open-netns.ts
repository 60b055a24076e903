// Opening the container's namespace is where a vanished pod shows up first: turn it into a
// CNI error that names CNI_NETNS instead of a raw errno.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { Netlink, openNetnsFd } from "../kernel/index.ts";
import { closeFd } from "../sys/libc.ts";

export interface ContainerNetns {
  fd: number;
  nl: Netlink;
}

export function openContainerNetns(path: string): ContainerNetns {
  let fd: number;
  try {
    fd = openNetnsFd(path);
  } catch (e) {
    throw new CniError(ErrorCode.InvalidEnv, `invalid env variable CNI_NETNS "${path}": cannot open network namespace: ${(e as Error).message}`, "", { cause: e });
  }
  try {
    return { fd, nl: Netlink.open(path) };
  } catch (e) {
    closeFdQuietly(fd);
    throw new CniError(ErrorCode.IOFailure, `cannot open netlink socket in "${path}": ${(e as Error).message}`, "", { cause: e });
  }
}

function closeFdQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    /* already closed */
  }
}

export function closeContainerNetns(c: ContainerNetns): void {
  c.nl.close();
  closeFdQuietly(c.fd);
}
