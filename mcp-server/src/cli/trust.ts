/**
 * `loki council status|verdicts|report|force-review` and `loki proof list|show|verify`: the trust layer, for
 * people. Verdicts of a council still voting stay hidden (votes are blind until the tally).
 */
import { effectiveThreshold } from '../domain/council.js';
import type { Project } from '../project.js';
import { readRun } from '../run/state.js';
import { listCouncils, outcomeOf, publicVerdicts, requestReview } from '../trust/council.js';
import { listProofs, readProofFile, verifyProof } from '../trust/receipt.js';
import { readTrust } from '../trust/state.js';
import { snapshotTree } from '../run/git.js';
import { print, printJson } from './output.js';
import { CliError } from '../errors.js';

const COUNCIL_USAGE = 'usage: loki council status|verdicts|report [--json] | loki council force-review [reason]';
const PROOF_USAGE = 'usage: loki proof list [--json] | loki proof show [RUN] | loki proof verify [RUN] [--json]';

export async function councilCommand(project: Project, args: string[], json: boolean): Promise<number> {
  const [sub, ...rest] = args;
  const config = project.config();
  const store = project.existingStore();
  const run = readRun(store);
  if (!run) throw new CliError('no run yet in this project (start one from your agent: "Loki Mode" in Claude Code)', 1);
  const sessions = listCouncils(store, run.runId);
  const last = sessions.at(-1);
  switch (sub) {
    case 'status': {
      const trust = readTrust(store, run.runId);
      const status = {
        runId: run.runId,
        enabled: config.council.enabled,
        size: config.council.size,
        threshold: effectiveThreshold(config.council.size, config.council.threshold),
        councils: sessions.length,
        current: last
          ? {
              id: last.id,
              state: outcomeOf(last).state,
              cast: last.votes.length,
              convenedAt: last.convenedAt,
              reason: last.reason,
            }
          : null,
        forcedReview: trust.forcedReview,
        unchangedTurns: trust.stagnation.unchangedTurns,
        findings: trust.findings,
      };
      if (json) printJson(status);
      else
        print(
          [
            `Council ${status.enabled ? 'enabled' : 'DISABLED'}: ${status.size} members, ${status.threshold} approvals needed.`,
            status.current
              ? `Current: ${status.current.id} ${status.current.state} (${status.current.cast}/${status.size} votes), convened ${status.current.convenedAt}: ${status.current.reason}.`
              : 'Not convened yet.',
            status.forcedReview
              ? `Forced review pending: ${status.forcedReview.reason}.`
              : `No forced review; ${status.unchangedTurns} turn(s) without a code change.`,
            ...status.findings.map((f) => `Finding: ${f}`),
          ].join('\n'),
        );
      return 0;
    }
    case 'verdicts': {
      const shown = sessions.map(publicVerdicts);
      if (json) printJson(shown);
      else if (shown.length === 0) print('No council has convened.');
      else
        for (const s of shown) {
          print(`${s.id} ${s.state}${s.hidden ? ` (${s.cast} vote(s) in, hidden until the tally)` : ''}`);
          for (const v of s.votes)
            print(
              `  seat ${v.seat} ${v.role}: ${v.vote}: ${v.rationale}${v.evidence.length ? ` [${v.evidence.join('; ')}]` : ''}`,
            );
        }
      return 0;
    }
    case 'report': {
      const text = readProofFile(store!, run.runId, 'RECEIPT.md');
      if (json) printJson({ runId: run.runId, councils: sessions.map(publicVerdicts), receipt: text ?? null });
      else
        print(
          text ??
            `Run ${run.runId} has no receipt yet.\n${sessions.map((s) => `${s.id}: ${outcomeOf(s).state}`).join('\n') || 'No council has convened.'}`,
        );
      return 0;
    }
    case 'force-review': {
      const reason = rest.join(' ').trim() || 'requested by the user (loki council force-review)';
      await requestReview(project, reason);
      print(`Forced review requested: the agent is told to verify and convene the council on its next turn.`);
      return 0;
    }
    default:
      throw new CliError(COUNCIL_USAGE, 2);
  }
}

export function proofCommand(project: Project, args: string[], json: boolean): number {
  const [sub, runArg, ...extra] = args;
  if (extra.length > 0) throw new CliError(PROOF_USAGE, 2);
  const store = project.existingStore();
  const proofs = listProofs(store);
  const pick = () => {
    const id = runArg ?? proofs.at(-1);
    if (!id) throw new CliError('no receipts yet: a run gets one when it completes', 1);
    if (!proofs.includes(id)) throw new CliError(`no receipt for run "${id}"; \`loki proof list\` shows them`, 1);
    return id;
  };
  switch (sub) {
    case 'list': {
      const rows = proofs.map((id) => ({
        runId: id,
        headline: /^# (.+)$/m.exec(readProofFile(store!, id, 'RECEIPT.md') ?? '')?.[1] ?? '(unreadable)',
      }));
      if (json) printJson(rows);
      else print(rows.length ? rows.map((r) => `${r.runId}  ${r.headline}`).join('\n') : 'No receipts yet.');
      return 0;
    }
    case 'show': {
      const id = pick();
      print(readProofFile(store!, id, 'RECEIPT.md') ?? `the receipt of ${id} has no RECEIPT.md`);
      return 0;
    }
    case 'verify': {
      const id = pick();
      const r = verifyProof(store!, project.root, id, () => snapshotTree(project.root));
      if (json) printJson(r);
      else
        print(
          [
            `${r.ok ? 'OK' : 'FAILED'}: receipt of ${id} (${r.headline ?? 'no headline'}).`,
            ...(r.manifestSha256
              ? [
                  `Manifest sha256 ${r.manifestSha256}: keep it where the agent cannot write, to check this receipt later.`,
                ]
              : []),
            ...r.problems.map((p) => `- ${p}`),
            ...r.notes.map((n) => `Note: ${n}`),
          ].join('\n'),
        );
      return r.ok ? 0 : 1;
    }
    default:
      throw new CliError(PROOF_USAGE, 2);
  }
}
