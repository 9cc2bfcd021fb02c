/**
 * A process's queue view that fell far behind (an owner's client that becomes the owner) catches up from the
 * change feed in bulk: its claim order must be exactly that of a view loaded afresh from the files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Project } from '../mcp-server/src/project.js';
import { addTasks, claimTask, completeTask, failTask, listTasks } from '../mcp-server/src/queue/operations.js';
import { connect, tempProject, type TempProject } from './helpers.js';

let p: TempProject | undefined;
const projects: Project[] = [];
afterEach(() => {
  for (const x of projects.splice(0)) x.close();
  p?.cleanup();
  p = undefined;
});

function open(root: string, actor: string): Project {
  const project = new Project({ root, env: { ...p!.env, LOKI_QUEUE_OWNER: 'off' }, actor });
  projects.push(project);
  return project;
}

/** Claim until nothing is ready; the ids in the order they came. */
async function drainOrder(project: Project, agent: string): Promise<string[]> {
  const order: string[] = [];
  for (;;) {
    const r = await claimTask(project, { agent });
    if (!r.task) return order;
    order.push(r.task.id);
  }
}

it('a view hundreds of changes behind claims in the same order as a view loaded from the files', async () => {
  p = tempProject();
  const c = await connect(p);
  await c.call('loki_start', { specText: '# Catch-up\n' });
  await c.close();
  const writer = open(p.root, 'writer');
  const priorities = ['critical', 'high', 'medium', 'low'] as const;
  for (let from = 0; from < 300; from += 150) {
    await addTasks(writer, Array.from({ length: 150 }, (_, k) => ({ id: `c${from + k}`, title: `task ${from + k}`, phase: 'BOOTSTRAP', priority: priorities[((from + k) * 7) % 4] })), 'user');
  }
  // The stale view loads now and then hears nothing while 200 tasks change.
  const behind = open(p.root, 'behind');
  listTasks(behind, { limit: 1 });
  const feed = path.join(p.root, '.loki/queue/changes.log');
  const feedBefore = fs.statSync(feed);
  for (let i = 0; i < 200; i++) {
    const r = await claimTask(writer, { agent: 'writer' });
    const id = r.task!.id;
    if (i % 5 === 0) await failTask(writer, id, r.token!, 'flaky');
    else if (i % 5 !== 1) await completeTask(writer, id, r.token!, 'done', []);
    // i % 5 === 1: left in progress
  }
  await addTasks(writer, Array.from({ length: 20 }, (_, i) => ({ id: `n${i}`, title: `new ${i}`, phase: 'BOOTSTRAP', priority: priorities[i % 4] })), 'user');
  // The feed was appended to, not started afresh: the stale view catches up from it (in bulk: 220 tasks changed)
  // rather than reloading every file.
  const feedAfter = fs.statSync(feed);
  expect(feedAfter.ino).toBe(feedBefore.ino);
  expect(feedAfter.size).toBeGreaterThan(feedBefore.size);
  // A copy of the project read by a fresh view is the reference.
  const copy = `${p.root}-copy`;
  fs.cpSync(p.root, copy, { recursive: true });
  try {
    fs.rmSync(path.join(copy, '.loki/locks'), { recursive: true, force: true });
    const fresh = open(copy, 'fresh');
    const expected = await drainOrder(fresh, 'fresh');
    expect(expected.length).toBe(300 - 200 + 40 + 20);
    expect(await drainOrder(behind, 'behind')).toEqual(expected);
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
  }
});
