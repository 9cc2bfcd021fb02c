/** `loki pause | resume | stop`: the person's signal, through the service that records it (run/control.ts). */
import type { Project } from '../project.js';
import { signalRun, type SignalVerb } from '../run/control.js';
import { print } from './output.js';

export async function signalCommand(project: Project, verb: SignalVerb): Promise<number> {
  const r = await signalRun(project, verb, `loki ${verb}`);
  print(r.message);
  return 0;
}
