/**
 * @module cli/field-map
 * Seed 001's "pheromone map" as text: the agents and the patterns they observe (and which live
 * pheromones each pattern reaches), the live pheromones with their age, ttl left and claimant,
 * and the field's counts. Pure: data in, lines out; `agentcom field map` redraws it live.
 */
import { type Pheromone, typeMatches } from '../protocol/field.js';
import { formatDuration, truncate } from './format.js';

export interface FieldMapData {
  agents: { id: string; online: boolean; observes: string[] }[];
  pheromones: Pheromone[];
  counts: { active: number; claimed: number; expired: number };
}

/** At most this many pheromones are drawn (the newest); the counts cover all. */
export const MAP_MAX_PHEROMONES = 40;

export function renderFieldMap(d: FieldMapData, now: number, width = 78): string[] {
  const inner = Math.max(40, width - 4);
  const row = (text: string) => `│ ${truncate(text, inner).padEnd(inner)} │`;
  const lines = [`┌─ Pheromone Map ${'─'.repeat(inner - 14)}┐`];
  const shown = [...d.pheromones].sort((a, b) => b.timestamp - a.timestamp).slice(0, MAP_MAX_PHEROMONES);
  if (!d.agents.length) lines.push(row('(no agents registered)'));
  for (const a of d.agents) {
    const dot = a.online ? '●' : '○';
    if (!a.observes.length) {
      lines.push(row(`${dot} ${a.id}  (observes nothing it declared)`));
      continue;
    }
    lines.push(row(`${dot} ${a.id}`));
    for (const pattern of a.observes) {
      const reached = d.pheromones.filter((p) => typeMatches(p.type, pattern)).length;
      lines.push(row(`    └──[${pattern}]── ${reached} live`));
    }
  }
  lines.push(row(''));
  if (!shown.length) lines.push(row('(the field is empty)'));
  for (const p of shown) {
    const mark = p.claimedBy ? '◉' : '○';
    const ttl =
      p.expiresAt === null ? 'permanent' : `expires in ${formatDuration(Math.max(0, p.expiresAt - now))}`;
    lines.push(row(`${mark} ${p.type}  ${p.id}`));
    lines.push(
      row(
        `    by ${p.source}, ${formatDuration(Math.max(0, now - p.timestamp))} ago, ${ttl}${p.claimedBy ? `, claimed: ${p.claimedBy}` : ', unclaimed'}`,
      ),
    );
    if (p.selector) lines.push(row(`    selector: ${p.selector}`));
  }
  if (d.pheromones.length > shown.length)
    lines.push(row(`… and ${d.pheromones.length - shown.length} older (agentcom field list)`));
  lines.push(row(''));
  lines.push(
    row(`Environment: ${d.counts.active} active | ${d.counts.claimed} claimed | ${d.counts.expired} expired`),
  );
  lines.push(`└${'─'.repeat(inner + 2)}┘`);
  return lines;
}
