/**
 * The skill pack agrees with the server: every tool the Markdown names is registered and every registered tool is
 * taught somewhere; modules have valid frontmatter and the index routes to exactly the modules that exist;
 * SKILL.md fits its budget. Then the pack as served to hosts without skills: loki_skill_load, the
 * loki://skills/{name} resources and the loki_start prompt, through a real SDK client.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { GetPromptResult, ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFrontmatter } from '../mcp-server/src/config/frontmatter.js';
import { SERVER_INSTRUCTIONS } from '../mcp-server/src/server.js';
import { INDEX, moduleNames, packRoot, parseModule } from '../mcp-server/src/skills/pack.js';
import { startPrompt } from '../mcp-server/src/skills/serve.js';
import { ALL_TOOLS } from '../mcp-server/src/tools/index.js';
import { REPO_ROOT, connect, structured, tempProject, text, type Connected, type TempProject } from './helpers.js';

const read = (rel: string) => fs.readFileSync(path.join(REPO_ROOT, rel), 'utf8');
const mdIn = (dir: string) =>
  fs
    .readdirSync(path.join(REPO_ROOT, dir))
    .filter((f) => f.endsWith('.md'))
    .sort();
const MODULES = mdIn('skills')
  .map((f) => f.slice(0, -3))
  .filter((n) => n !== INDEX);
const TOOL_NAMES = new Set(ALL_TOOLS.map((t) => t.name));
/** Tool names as the Markdown writes them (not the host-prefixed forms like `mcp__loki__<tool>`). */
const toolMentions = (md: string) => new Set(md.match(/\bloki_[a-z]+(?:_[a-z]+)*/g) ?? []);
const words = (s: string) => s.split(/\s+/).filter(Boolean).length;

describe('the skill pack agrees with the registered tools', () => {
  const taught = ['SKILL.md', ...mdIn('skills').map((f) => `skills/${f}`)];
  const all = [...taught, ...mdIn('references').map((f) => `references/${f}`)];

  it.each(all)('every tool %s names is registered', (file) => {
    const unknown = [...toolMentions(read(file))].filter((n) => !TOOL_NAMES.has(n));
    expect(unknown, `${file} names tools the server does not register`).toEqual([]);
  });

  it('every registered tool is taught in SKILL.md or a module', () => {
    const mentioned = new Set(taught.flatMap((f) => [...toolMentions(read(f))]));
    expect(ALL_TOOLS.map((t) => t.name).filter((n) => !mentioned.has(n))).toEqual([]);
  });

  it('the mention scan finds tool names and skips host-prefixed forms', () => {
    expect([
      ...toolMentions('call `loki_task_claim`, then loki_status; mcp__loki__<tool>, `loki__x`, LOKI_MAX_RETRIES'),
    ]).toEqual(['loki_task_claim', 'loki_status']);
  });
});

describe('SKILL.md', () => {
  const raw = read('SKILL.md');
  const { data, content } = parseFrontmatter(raw);

  it('is the loki-mode skill and triggers on "Loki Mode" and on building from a spec', () => {
    expect(data.name).toBe('loki-mode');
    expect(String(data.description)).toContain('Loki Mode');
    expect(String(data.description)).toMatch(/spec/i);
    expect(String(data.description).length).toBeLessThanOrEqual(1024);
  });

  it('fits the on-invoke budget: at most 2,500 tokens (bytes / 4) for the whole file', () => {
    expect(Buffer.byteLength(raw, 'utf8') / 4).toBeLessThanOrEqual(2500);
  });

  it('carries the per-turn protocol and routes to the index', () => {
    for (const must of [
      'loki_status',
      '`Next:`',
      'PAUSE',
      'STOP',
      'loki_verify',
      'loki_council_convene',
      'loki_council_vote',
      'loki_complete',
      'CONTINUE',
      'loki_rollback',
      'loki_learn',
      'skills/00-index.md',
      '.loki/',
    ]) {
      expect(content, must).toContain(must);
    }
    expect(content).toMatch(/Never delete, skip or weaken a failing test/);
    expect(content.indexOf('loki_status')).toBeLessThan(content.indexOf('loki_task_claim'));
  });
});

describe('modules and the index', () => {
  it('the pack root is this repository, and moduleNames() lists exactly skills/*.md but the index', () => {
    expect(packRoot()).toBe(fs.realpathSync(REPO_ROOT));
    expect(moduleNames()).toEqual(MODULES);
    expect(MODULES.length).toBeGreaterThanOrEqual(11);
  });

  it.each([INDEX, ...MODULES])('%s has frontmatter name (= file name), description and when', (name) => {
    const m = parseModule(name, read(`skills/${name}.md`));
    expect(m.description.length).toBeGreaterThan(20);
    expect(m.when.length).toBeGreaterThan(5);
  });

  it.each(MODULES)('%s is 300-900 words', (name) => {
    const n = words(parseModule(name, read(`skills/${name}.md`)).body);
    expect(n).toBeGreaterThanOrEqual(300);
    expect(n).toBeLessThanOrEqual(900);
  });

  it('the required modules exist', () => {
    for (const m of [
      'model-and-agent-selection',
      'quality-gates-and-review',
      'testing',
      'troubleshooting-and-dead-letter',
      'memory-and-compound-learning',
      'council-and-completion',
      'checkpoints-and-rollback',
      'parallel-agents',
      'providers',
      'production-and-deployment',
      'github-issues-as-specs',
    ]) {
      expect(MODULES).toContain(m);
    }
  });

  it('00-index routes every situation to 1-3 existing modules, and every module is routed to', () => {
    const body = parseModule(INDEX, read(`skills/${INDEX}.md`)).body;
    const rows = body.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| task or situation'));
    expect(rows.length).toBeGreaterThanOrEqual(10);
    const routed = new Set<string>();
    for (const row of rows) {
      const targets = row
        .split('|')
        .at(-2)!
        .split(',')
        .map((s) => s.trim());
      expect(targets.length, row).toBeGreaterThanOrEqual(1);
      expect(targets.length, row).toBeLessThanOrEqual(3);
      for (const t of targets) {
        expect(MODULES, `index row routes to a missing module: ${row}`).toContain(t);
        routed.add(t);
      }
    }
    expect(MODULES.filter((m) => !routed.has(m))).toEqual([]);
    const described = [...body.matchAll(/^- \*\*([a-z0-9-]+)\*\*/gm)].map((m) => m[1]);
    expect(described.sort()).toEqual(MODULES);
  });

  it('every references/ file the pack points to exists, and every reference is pointed to', () => {
    const pack = ['SKILL.md', ...mdIn('skills').map((f) => `skills/${f}`)].map(read).join('\n');
    const pointed = new Set([...pack.matchAll(/references\/([a-z0-9-]+\.md)/g)].map((m) => m[1]));
    expect([...pointed].filter((f) => !mdIn('references').includes(f!))).toEqual([]);
    expect(mdIn('references').filter((f) => !pointed.has(f))).toEqual([]);
  });

  it('parseModule refuses a module whose frontmatter is missing a field or names another file', () => {
    expect(() => parseModule('testing', '---\nname: testing\ndescription: d\n---\nbody')).toThrow(/`when`/);
    expect(() => parseModule('testing', '---\nname: other\ndescription: d\nwhen: w\n---\nbody')).toThrow(
      /must be the file name/,
    );
    expect(() => parseModule('testing', 'no frontmatter')).toThrow(/`name`/);
    expect(() => parseModule('testing', '---js\n{ name: "testing" }\n---\nbody')).toThrow(/only YAML/);
  });
});

describe('served to hosts without skills', () => {
  let p: TempProject;
  let c: Connected;
  beforeAll(async () => {
    p = tempProject();
    c = await connect(p);
  });
  afterAll(async () => {
    await c.close();
    p.cleanup();
  });

  it('the server instructions point to loki_skill_load and the loki_start prompt', () => {
    expect(c.client.getInstructions()).toBe(SERVER_INSTRUCTIONS);
    expect(SERVER_INSTRUCTIONS).toMatch(/loki_skill_load/);
    expect(SERVER_INSTRUCTIONS).toMatch(/loki_start prompt/);
  });

  it('loki_skill_load with no name returns the index and the module list', async () => {
    const r = structured<{
      name: string;
      body: string;
      modules: { name: string; description: string; when: string }[];
    }>(await c.call('loki_skill_load'));
    expect(r.name).toBe(INDEX);
    expect(r.body).toBe(parseModule(INDEX, read(`skills/${INDEX}.md`)).body);
    expect(r.modules.map((m) => m.name)).toEqual(MODULES);
    expect(r.modules.every((m) => m.description && m.when)).toBe(true);
  });

  it('loki_skill_load with a name returns that module, text and structured', async () => {
    const res = await c.call('loki_skill_load', { name: 'testing' });
    const expected = parseModule('testing', read('skills/testing.md'));
    expect(structured(res)).toEqual({
      name: 'testing',
      description: expected.description,
      when: expected.when,
      body: expected.body,
      next: expect.stringMatching(/^loki_start /),
    });
    // The module, then the one step every result ends with.
    expect(text(res)).toBe(`${expected.body}\nNext: ${structured<{ next: string }>(res).next}`);
  });

  it.each(['../x', 'SKILL', 'skills/testing', 'testing.md', '.hidden', '-x', 'a'.repeat(65)])(
    'loki_skill_load refuses %j and lists the modules',
    async (name) => {
      const r = await c.call('loki_skill_load', { name });
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(/name must be a module name/);
      expect(text(r)).toContain(`known: ${INDEX}, ${MODULES.join(', ')}`);
    },
  );

  it('loki_skill_load refuses an unknown module with the list', async () => {
    const r = await c.call('loki_skill_load', { name: 'nope' });
    expect(r.isError).toBe(true);
    expect(text(r)).toContain(`no skill module "nope"; known: ${INDEX}, ${MODULES.join(', ')}`);
  });

  it('loki://skills/{name} is a template whose list holds the index and every module', async () => {
    const { resourceTemplates } = await c.client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toContain('loki://skills/{name}');
    const { resources } = await c.client.listResources();
    const skills = resources.filter((r) => r.uri.startsWith('loki://skills/'));
    expect(skills.map((r) => r.uri)).toEqual([INDEX, ...MODULES].map((n) => `loki://skills/${n}`));
    expect(skills.every((r) => r.mimeType === 'text/markdown' && r.description)).toBe(true);
  });

  it('reading loki://skills/<name> returns the module body; a bad name is refused', async () => {
    const r = (await c.client.readResource({ uri: 'loki://skills/parallel-agents' })) as ReadResourceResult;
    expect(r.contents[0]).toMatchObject({
      uri: 'loki://skills/parallel-agents',
      mimeType: 'text/markdown',
      text: parseModule('parallel-agents', read('skills/parallel-agents.md')).body,
    });
    await expect(c.client.readResource({ uri: 'loki://skills/nope' })).rejects.toThrow(/no skill module "nope"/);
    await expect(c.client.readResource({ uri: 'loki://skills/..%2FSKILL' })).rejects.toThrow(
      /name must be a module name/,
    );
  });

  it('the loki_start prompt carries the protocol, and embeds a spec path or spec text', async () => {
    const { prompts } = await c.client.listPrompts();
    const listed = prompts.find((x) => x.name === 'loki_start');
    expect(listed?.arguments).toEqual([expect.objectContaining({ name: 'spec', required: false })]);
    const protocol = parseFrontmatter(read('SKILL.md')).content.trim();
    const body = async (args?: Record<string, string>) => {
      const r = (await c.client.getPrompt({ name: 'loki_start', arguments: args })) as GetPromptResult;
      expect(r.messages).toHaveLength(1);
      const m = r.messages[0]!;
      return m.content.type === 'text' ? m.content.text : '';
    };
    const bare = await body();
    expect(bare).toContain(protocol);
    expect(bare).toMatch(/loki_start with no arguments to resume/);
    expect(await body({ spec: 'docs/prd.md' })).toMatch(/call loki_start with spec "docs\/prd\.md"/);
    const inline = await body({ spec: '# Todo app\n- add items\n- list items' });
    expect(inline).toMatch(/specText/);
    expect(inline).toContain('<spec>\n# Todo app\n- add items\n- list items\n</spec>');
    expect(startPrompt('P', '  ')).toBe(startPrompt('P', undefined));
  });

  it('the whole tools/list stays within 6,000 tokens (bytes / 4)', async () => {
    const { tools } = await c.client.listTools();
    expect(tools.map((t) => t.name)).toContain('loki_skill_load');
    expect(Buffer.byteLength(JSON.stringify(tools), 'utf8') / 4).toBeLessThanOrEqual(6000);
  });
});
