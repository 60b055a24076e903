export const VERSION = "0.1.0";

declare const MNCNI_BUILD: string | undefined;
/**
 * Identifies the build (set by `make build` with --define); a resident server of another
 * build declines calls so a plugin and an agent of different versions never mix.
 */
export const BUILD: string = typeof MNCNI_BUILD === "string" ? MNCNI_BUILD : `${VERSION}-dev`;
