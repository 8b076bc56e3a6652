/**
 * Finds the sidecar data path at run time. src/proxy/sidecar is built on another branch; loading it by
 * a computed specifier lets this core compile and run (as a gateway) before that branch lands, and pick
 * the real createSidecar up as soon as it does, with no change here.
 */
import type { SidecarFactory } from './sidecar-contract.js';

export async function loadSidecarFactory(): Promise<SidecarFactory | undefined> {
  const specifier = new URL('../sidecar/index.js', import.meta.url).href;
  try {
    const mod = (await import(specifier)) as { createSidecar?: SidecarFactory };
    return typeof mod.createSidecar === 'function' ? mod.createSidecar : undefined;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('/sidecar/index.js')) return undefined;
    throw err;
  }
}
