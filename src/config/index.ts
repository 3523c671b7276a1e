// Config entry points: from a YAML file, YAML text, or a plain object.

import { compileConfig, type CompiledConfig } from './compiled-config.js';
import { parseConfigText, readConfigFile, validateConfigValue } from './load-config.js';

export async function loadConfigFile(path: string): Promise<CompiledConfig> {
  const { parsed } = await readConfigFile(path);
  return compileConfig(parsed);
}

export function loadConfigText(text: string, file = '<text>'): CompiledConfig {
  return compileConfig(parseConfigText(text, file));
}

export function loadConfigObject(value: unknown): CompiledConfig {
  return compileConfig(validateConfigValue(value, '<object>'));
}
