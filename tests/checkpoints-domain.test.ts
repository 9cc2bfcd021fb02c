/** The pure checkpoint rules: what a rollback restores, `latest`, retention, diffs and git name-status parsing. */
import { describe, expect, it } from 'vitest';
import {
  diffState,
  tableRole,
  parseNameStatus,
  selectLatest,
  selectPrune,
  stateDigestText,
  summarizeChanges,
  type CheckpointRef,
} from '../mcp-server/src/domain/checkpoints.js';

const ref = (seq: number, type: CheckpointRef['type']): CheckpointRef => ({ id: `cp-${seq}`, seq, type });

describe('checkpoint rules', () => {
  it('restores the run state tables and keeps the audit log, the checkpoints, the database facts and memory; a table nobody classified has no role', () => {
    for (const t of ['docs', 'tasks', 'task_archive']) expect(tableRole(t), t).toBe('restored');
    for (const t of ['audit', 'checkpoints', 'meta', 'memory', 'memory_fts', 'memory_fts_data'])
      expect(tableRole(t), t).toBe('kept');
    for (const t of ['sessions', 'task', 'docs2']) expect(tableRole(t), t).toBeUndefined();
  });

  it('latest is the newest by sequence that is not a pre-rollback checkpoint, whatever the order given', () => {
    expect(selectLatest([ref(3, 'auto'), ref(9, 'pre-rollback'), ref(7, 'manual'), ref(8, 'pre-rollback')])?.id).toBe(
      'cp-7',
    );
    expect(selectLatest([ref(2, 'pre-rollback')])).toBeUndefined();
    expect(selectLatest([])).toBeUndefined();
  });

  it('retention keeps the newest N automatic and N pre-rollback checkpoints and every manual one', () => {
    const all = [
      ...Array.from({ length: 8 }, (_, i) => ref(i + 1, 'auto')),
      ref(20, 'manual'),
      ref(21, 'pre-rollback'),
      ref(22, 'pre-rollback'),
      ref(23, 'pre-rollback'),
      ref(0.5, 'manual'),
    ];
    expect(selectPrune(all, 3).sort()).toEqual(['cp-1', 'cp-2', 'cp-3', 'cp-4', 'cp-5']);
    expect(selectPrune(all, 2)).toContain('cp-21');
    expect(selectPrune(all, 100)).toEqual([]);
    expect(selectPrune(all, 0).length).toBe(11);
  });

  it('diffs state rows by key and parses git name-status output into the same change sets', () => {
    const e = (key: string, sha: string) => ({ key, sha256: sha.repeat(64), size: 1 });
    expect(diffState([e('a', '1'), e('b', '2'), e('c', '3')], [e('b', '2'), e('c', '4'), e('d', '5')])).toEqual({
      added: ['d'],
      modified: ['c'],
      removed: ['a'],
    });
    expect(parseNameStatus('A\0new file.txt\0M\0dir/x\0D\0gone\0T\0link\0')).toEqual({
      added: ['new file.txt'],
      modified: ['dir/x', 'link'],
      removed: ['gone'],
    });
    expect(parseNameStatus('')).toEqual({ added: [], modified: [], removed: [] });
    const s = summarizeChanges({ added: ['a', 'b'], modified: ['c'], removed: ['d'] }, 3);
    expect(s).toEqual({ added: 2, modified: 1, removed: 1, paths: ['+ a', '+ b', '~ c'], truncated: true });
  });

  it('digests state rows independently of their order', () => {
    const a = { key: 'tasks/a', sha256: '1'.repeat(64), size: 1 };
    const b = { key: 'tasks/b', sha256: '2'.repeat(64), size: 2 };
    expect(stateDigestText([b, a])).toBe(stateDigestText([a, b]));
    expect(stateDigestText([a])).not.toBe(stateDigestText([{ ...a, size: 3 }]));
  });
});
