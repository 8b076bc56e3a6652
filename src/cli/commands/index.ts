import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { registerVersion } from './version.js';
import { registerValidate } from './validate.js';
import { registerCa } from './ca.js';
import { registerToken } from './token.js';
import { registerControlPlane } from './control-plane.js';
import { registerResources } from './resources.js';
import { registerRemoteSecret } from './remote-secret.js';
import { registerLab } from './lab.js';
import { registerAnalyze } from './analyze.js';
import { registerProxy } from './proxy.js';
import { registerProxyConfig, registerProxyStatus } from './proxy-config.js';

/** Every subcommand registers itself here; the order is the order `--help` lists them in. */
export const commands: ReadonlyArray<(program: Command, ctx: CliContext) => void> = [
  registerVersion,
  registerValidate,
  registerCa,
  registerToken,
  registerControlPlane,
  registerResources,
  registerRemoteSecret,
  registerAnalyze,
  registerProxy,
  registerProxyConfig,
  registerProxyStatus,
  registerLab,
];
