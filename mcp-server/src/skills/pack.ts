/**
 * The skill pack as the server serves it to hosts without a skill mechanism (loki_skill_load, the
 * loki://skills/{name} resources, the loki_start prompt). The Markdown ships in the npm package next to the
 * server: SKILL.md, skills/00-index.md and skills/<name>.md. The pack root is found from this file's own
 * location (mcp-server/dist/*.js or mcp-server/src/skills/pack.ts), never from the project or the caller.
 *
 * A module name must match NAME (lowercase, digits, dashes: no dots, no slashes), and files are read through
 * the path validator (SafeDir), so a name can only ever select a file directly inside skills/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFrontmatter } from '../config/frontmatter.js';

import { readFileIfExists } from '../store/fsx.js';
import { SafeDir, printable } from '../store/paths.js';
import { UsageError } from '../errors.js';

export const NAME = /^[a-z0-9][a-z0-9-]*$/;
export const INDEX = '00-index';
const MAX_NAME = 64;
const MAX_FILE = 64 * 1024;

export interface ModuleInfo {
  name: string;
  description: string;
  /** Phases or situations it is for. */
  when: string;
}
export interface Module extends ModuleInfo {
  body: string;
}

let root: string | undefined;

/** The folder holding SKILL.md and skills/: the nearest ancestor of this file that has both. */
export function packRoot(): string {
  if (root) return root;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const tried: string[] = [];
  for (let dir = here, i = 0; i < 5; i++, dir = path.dirname(dir)) {
    tried.push(dir);
    if (fs.existsSync(path.join(dir, 'SKILL.md')) && fs.existsSync(path.join(dir, 'skills', `${INDEX}.md`)))
      return (root = dir);
  }
  throw new UsageError(
    `the skill files (SKILL.md, skills/) are not installed next to the server (looked in ${tried.join(', ')}); reinstall the loki-mode package`,
  );
}

function skillsDir(): SafeDir {
  return SafeDir.open(path.join(packRoot(), 'skills'));
}

/** Names of the modules in skills/, sorted, without the index. */
export function moduleNames(): string[] {
  return fs
    .readdirSync(path.join(packRoot(), 'skills'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => f.slice(0, -3))
    .filter((n) => n !== INDEX && NAME.test(n))
    .sort();
}

export function listModules(): ModuleInfo[] {
  return moduleNames().map((n) => {
    const { body: _body, ...info } = readModule(n);
    return info;
  });
}

/** One module (or the index, for INDEX), parsed. Unknown or malformed names are refused with the list. */
export function readModule(name: string): Module {
  if (name.length > MAX_NAME || !NAME.test(name)) {
    throw new UsageError(
      `name must be a module name (lowercase letters, digits and dashes), not "${printable(name.slice(0, 80))}"; known: ${knownNames()}`,
    );
  }
  const raw = readFileIfExists(skillsDir(), `${name}.md`, MAX_FILE);
  if (!raw) throw new UsageError(`no skill module "${name}"; known: ${knownNames()}`);
  return parseModule(name, raw.toString('utf8'));
}

/** SKILL.md's body: the per-turn protocol. */
export function readProtocol(): string {
  const raw = readFileIfExists(SafeDir.open(packRoot()), 'SKILL.md', MAX_FILE);
  if (!raw) throw new UsageError('SKILL.md is missing from the installed package; reinstall loki-mode');
  return parseFrontmatter(raw.toString('utf8')).content.trim();
}

export function parseModule(name: string, text: string): Module {
  let file;
  try {
    file = parseFrontmatter(text);
  } catch (err) {
    throw new Error(`skills/${name}.md: frontmatter does not parse: ${(err as Error).message.split('\n')[0]}`);
  }
  const field = (key: string) => {
    const v = file.data[key];
    if (typeof v !== 'string' || v.trim() === '')
      throw new Error(`skills/${name}.md: frontmatter needs a non-empty \`${key}\``);
    return v.trim();
  };
  if (field('name') !== name)
    throw new Error(`skills/${name}.md: frontmatter name "${field('name')}" must be the file name "${name}"`);
  return { name, description: field('description'), when: field('when'), body: file.content.trim() };
}

function knownNames(): string {
  return [INDEX, ...moduleNames()].join(', ');
}
