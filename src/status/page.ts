/**
 * The status page: one server-rendered HTML document, no script, no external resource (no CDN,
 * no web font), readable without JavaScript and with a screen reader. Charts are inline SVG;
 * every chart has a real table of its data right after it, every section a heading, and no
 * verdict is told by colour alone (each says PASS / FAIL / GO / NO-GO in words; chart series
 * differ by marker shape or fill pattern as well as colour, and are named in a text legend).
 *
 * Pure: takes the {@link EstateStatus} that `GET /api/status` answers, so the page and the API
 * cannot disagree.
 */
import type { EstateStatus, Evidence, RunFilters, StatusItem } from './model.ts';
import { formatSeconds } from './rules.ts';

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

const e = escapeHtml;

/** A link only when the URL is one of ours (http(s) or a path); anything else is shown as text. */
function safeHref(url: string): string | undefined {
  return /^(https?:\/\/|\/)[^\s"'<>]*$/.test(url) ? url : undefined;
}

/** One data series of a chart. */
interface Series {
  readonly name: string;
  readonly values: readonly (number | null)[];
  /** Marker of points (line charts) or fill of bars; never only colour. */
  readonly style: 'circle' | 'square' | 'triangle' | 'solid' | 'hatched' | 'dotted';
  readonly colour: string;
  /** A horizontal target line for this series (dashed), when there is one. */
  readonly target?: number | null;
}

interface ChartSpec {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  readonly unit: string;
  readonly categories: readonly string[];
  readonly series: readonly Series[];
  readonly kind: 'points' | 'bars';
  /** Header of the category column of the table. */
  readonly categoryHeader: string;
  readonly format?: (value: number) => string;
}

const WIDTH = 640;
const HEIGHT = 220;
const PAD = { left: 56, right: 16, top: 16, bottom: 40 };

function marker(style: Series['style'], x: number, y: number, colour: string): string {
  const at = (n: number): string => n.toFixed(1);
  if (style === 'square') return `<rect x="${at(x - 4)}" y="${at(y - 4)}" width="8" height="8" fill="${colour}" stroke="#000" stroke-width="0.5"/>`;
  if (style === 'triangle') return `<path d="M${at(x)} ${at(y - 5)} L${at(x + 5)} ${at(y + 4)} L${at(x - 5)} ${at(y + 4)} Z" fill="${colour}" stroke="#000" stroke-width="0.5"/>`;
  return `<circle cx="${at(x)}" cy="${at(y)}" r="4.5" fill="${colour}" stroke="#000" stroke-width="0.5"/>`;
}

function fillOf(series: Series, chartId: string, index: number): string {
  return series.style === 'solid' ? series.colour : `url(#${chartId}-p${String(index)})`;
}

/** An SVG chart and, after it, the table of the same data. */
function chart(spec: ChartSpec): string {
  const format = spec.format ?? ((value: number): string => String(value));
  const values = spec.series.flatMap((series) => [...series.values.filter((value): value is number => value !== null), ...(series.target === undefined || series.target === null ? [] : [series.target])]);
  const max = Math.max(1, ...values) * 1.1;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const n = Math.max(1, spec.categories.length);
  const xOf = (index: number): number => PAD.left + (plotW * (index + 0.5)) / n;
  const yOf = (value: number): number => PAD.top + plotH - (plotH * value) / max;
  const parts: string[] = [];
  const patterns = spec.series
    .map((series, index) => {
      if (series.style === 'hatched') return `<pattern id="${spec.id}-p${String(index)}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="${series.colour}" stroke-width="3"/></pattern>`;
      if (series.style === 'dotted') return `<pattern id="${spec.id}-p${String(index)}" width="5" height="5" patternUnits="userSpaceOnUse"><rect width="5" height="5" fill="#fff"/><circle cx="2.5" cy="2.5" r="1.5" fill="${series.colour}"/></pattern>`;
      return '';
    })
    .join('');
  if (patterns !== '') parts.push(`<defs>${patterns}</defs>`);
  // Axes and a few gridlines with their values, so the chart reads without the table too.
  parts.push(`<line x1="${String(PAD.left)}" y1="${String(PAD.top + plotH)}" x2="${String(WIDTH - PAD.right)}" y2="${String(PAD.top + plotH)}" stroke="#333"/>`);
  parts.push(`<line x1="${String(PAD.left)}" y1="${String(PAD.top)}" x2="${String(PAD.left)}" y2="${String(PAD.top + plotH)}" stroke="#333"/>`);
  for (const fraction of [0.5, 1]) {
    const value = (max / 1.1) * fraction;
    const y = yOf(value).toFixed(1);
    parts.push(`<line x1="${String(PAD.left)}" y1="${y}" x2="${String(WIDTH - PAD.right)}" y2="${y}" stroke="#ccc" stroke-dasharray="2 3"/><text x="${String(PAD.left - 4)}" y="${y}" text-anchor="end" font-size="10" dominant-baseline="middle">${e(format(Number(value.toFixed(1))))}</text>`);
  }
  spec.categories.forEach((category, index) => {
    if (n <= 8 || index % Math.ceil(n / 8) === 0) parts.push(`<text x="${xOf(index).toFixed(1)}" y="${String(HEIGHT - PAD.bottom + 14)}" text-anchor="middle" font-size="10">${e(category.slice(5, 16).replace('T', ' '))}</text>`);
  });
  if (spec.kind === 'bars') {
    const group = plotW / n;
    const bar = Math.max(2, (group * 0.8) / Math.max(1, spec.series.length));
    spec.series.forEach((series, s) => {
      series.values.forEach((value, index) => {
        if (value === null || value === 0) return;
        const x = PAD.left + group * index + group * 0.1 + bar * s;
        const y = yOf(value);
        parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bar.toFixed(1)}" height="${(PAD.top + plotH - y).toFixed(1)}" fill="${fillOf(series, spec.id, s)}" stroke="${series.colour}"><title>${e(`${series.name}, ${spec.categories[index] ?? ''}: ${format(value)}`)}</title></rect>`);
      });
    });
  } else {
    spec.series.forEach((series) => {
      if (series.target !== undefined && series.target !== null) {
        const y = yOf(series.target).toFixed(1);
        parts.push(`<line x1="${String(PAD.left)}" y1="${y}" x2="${String(WIDTH - PAD.right)}" y2="${y}" stroke="${series.colour}" stroke-dasharray="6 4"/><text x="${String(WIDTH - PAD.right)}" y="${(Number(y) - 3).toFixed(1)}" text-anchor="end" font-size="10">${e(`${series.name} target ${format(series.target)}`)}</text>`);
      }
      const points = series.values.map((value, index) => (value === null ? undefined : { x: xOf(index), y: yOf(value), value, index })).filter((point) => point !== undefined);
      if (points.length > 1) parts.push(`<polyline fill="none" stroke="${series.colour}" stroke-width="1.5" points="${points.map((point) => `${point.x.toFixed(1)},${point.y.toFixed(1)}`).join(' ')}"/>`);
      for (const point of points) parts.push(`<g>${marker(series.style, point.x, point.y, series.colour)}<title>${e(`${series.name}, ${spec.categories[point.index] ?? ''}: ${format(point.value)}`)}</title></g>`);
    });
  }
  const legend = spec.series
    .map((series) => `<li><span aria-hidden="true" class="swatch swatch-${series.style}" style="border-color:${series.colour};${series.style === 'solid' || series.style === 'circle' || series.style === 'square' || series.style === 'triangle' ? `background:${series.colour}` : ''}"></span>${e(series.name)} (${e(describeStyle(series.style))})</li>`)
    .join('');
  const empty = spec.categories.length === 0;
  const svg = empty
    ? `<p class="empty">No data yet.</p>`
    : `<svg role="img" aria-labelledby="${spec.id}-title ${spec.id}-desc" viewBox="0 0 ${String(WIDTH)} ${String(HEIGHT)}" width="100%" style="max-width:${String(WIDTH)}px" xmlns="http://www.w3.org/2000/svg"><title id="${spec.id}-title">${e(spec.title)}</title><desc id="${spec.id}-desc">${e(spec.description)} The table below holds the same data.</desc>${parts.join('')}</svg><ul class="legend">${legend}</ul>`;
  const head = `<tr><th scope="col">${e(spec.categoryHeader)}</th>${spec.series.map((series) => `<th scope="col">${e(series.name)} (${e(spec.unit)})</th>`).join('')}${spec.series.some((series) => series.target !== undefined) ? spec.series.filter((series) => series.target !== undefined).map((series) => `<th scope="col">${e(series.name)} target (${e(spec.unit)})</th>`).join('') : ''}</tr>`;
  const rows = spec.categories
    .map((category, index) => `<tr><th scope="row">${e(category)}</th>${spec.series.map((series) => `<td>${series.values[index] === null || series.values[index] === undefined ? '–' : e(format(series.values[index]))}</td>`).join('')}${spec.series.filter((series) => series.target !== undefined).map((series) => `<td>${series.target === null || series.target === undefined ? '–' : e(format(series.target))}</td>`).join('')}</tr>`)
    .join('');
  return `<figure class="chart" id="${spec.id}" data-chart="${spec.id}"><figcaption><h3>${e(spec.title)}</h3><p>${e(spec.description)}</p></figcaption>${svg}<table class="chart-data" data-chart-table="${spec.id}"><caption>${e(spec.title)}: the data</caption><thead>${head}</thead><tbody>${rows === '' ? `<tr><td colspan="${String(spec.series.length + 1)}">No data yet.</td></tr>` : rows}</tbody></table></figure>`;
}

function describeStyle(style: Series['style']): string {
  return { circle: 'circles', square: 'squares', triangle: 'triangles', solid: 'solid bars', hatched: 'hatched bars', dotted: 'dotted bars' }[style];
}

function evidenceRows(evidence: readonly Evidence[]): string {
  return evidence
    .map((entry) => {
      const href = entry.link === undefined ? undefined : safeHref(entry.link);
      const run = entry.runId === undefined ? '–' : href === undefined ? e(entry.runId) : `<a href="${e(href)}" data-run-link="${e(entry.runId)}">run ${e(entry.runId.slice(0, 8))}<span class="visually-hidden"> (${e(entry.runId)})</span></a>`;
      return `<tr data-evidence-result="${entry.result}"><td><span class="result result-${entry.result}">${entry.result.toUpperCase()}</span></td><td>${e(entry.what)}</td><td>${e(entry.detail)}</td><td>${run}</td><td>${entry.at === undefined ? '–' : `<time datetime="${e(entry.at)}">${e(entry.at.replace('T', ' ').slice(0, 19))}</time>`}</td></tr>`;
    })
    .join('');
}

function itemSection(item: StatusItem): string {
  const verdict = item.verdict === 'pass' ? 'PASS' : 'FAIL';
  const reasons = item.reasons.length === 0 ? '' : `<h4>Why it fails</h4><ul class="reasons">${item.reasons.map((reason) => `<li>${e(reason)}</li>`).join('')}</ul>`;
  return `<section class="item item-${item.verdict}" id="item-${item.id}" data-item="${item.id}" data-verdict="${item.verdict}" data-critical="${String(item.critical)}" aria-labelledby="item-${item.id}-h"><h3 id="item-${item.id}-h"><span class="verdict verdict-${item.verdict}">${verdict}</span> ${e(item.title)} <small>${item.critical ? 'critical: blocks the release when it fails' : 'not critical: reported, never blocks'}</small></h3><p class="checklist">Checklist: ${e(item.checklist)}</p><p class="summary">${e(item.summary)}</p>${reasons}<table class="evidence"><caption>Evidence of ${e(item.title.toLowerCase())}</caption><thead><tr><th scope="col">Result</th><th scope="col">What was checked</th><th scope="col">Found</th><th scope="col">Run record</th><th scope="col">When (UTC)</th></tr></thead><tbody>${evidenceRows(item.evidence)}</tbody></table></section>`;
}

const OUTCOMES = ['ok', 'findings', 'failed', 'refused', 'cancelled'] as const;
const RUNBOOK_CHOICES = ['backup-verify', 'secret-expiry', 'keyvault-backup', 'revision-cleanup', 'image-purge', 'restore-drill', 'restore', 'remediation', 'inventory'] as const;

function option(value: string, label: string, selected: boolean): string {
  return `<option value="${e(value)}"${selected ? ' selected' : ''}>${e(label)}</option>`;
}

function runsSection(status: EstateStatus, formAction: string): string {
  const filters: RunFilters = status.runFilters;
  const form = `<form method="get" action="${e(formAction)}" class="filters"><label>Runbook <select name="runbook">${option('', 'any', filters.runbook === undefined)}${RUNBOOK_CHOICES.map((runbook) => option(runbook, runbook, filters.runbook === runbook)).join('')}</select></label> <label>Outcome <select name="outcome">${option('', 'any', filters.outcome === undefined)}${OUTCOMES.map((outcome) => option(outcome, outcome, filters.outcome === outcome)).join('')}</select></label> <label>Since <select name="since">${['1d', '7d', '30d', '90d'].map((since) => option(since, since, filters.since === since)).join('')}</select></label> <label>Show <input type="number" name="limit" min="1" max="200" value="${String(filters.limit)}"></label> <button type="submit">Filter</button></form>`;
  const rows = status.recentRuns
    .map((run) => {
      const href = safeHref(run.link);
      return `<tr data-run="${e(run.runId)}"><td>${href === undefined ? e(run.runId) : `<a href="${e(href)}">${e(run.runId.slice(0, 8))}</a>`}</td><td>${e(run.runbook)}</td><td><span class="result result-${run.outcome === 'ok' ? 'pass' : run.outcome === 'failed' || run.outcome === 'refused' ? 'fail' : 'info'}">${e(run.outcome)}</span>${run.dryRun ? ' (dry run)' : ''}</td><td>${e(run.trigger)}</td><td><time datetime="${e(run.startedAt)}">${e(run.startedAt.replace('T', ' ').slice(0, 19))}</time></td><td>${String(Math.round(run.durationMs / 100) / 10)} s</td><td>${String(run.counts.applied)} applied, ${String(run.counts.findingsFail)} fail / ${String(run.counts.findingsWarn)} warn</td></tr>`;
    })
    .join('');
  return `<section id="runs" aria-labelledby="runs-h"><h2 id="runs-h">Recent runs</h2>${form}<table class="runs"><caption>Runs since ${e(filters.since)}${filters.runbook === undefined ? '' : ` of ${e(filters.runbook)}`}${filters.outcome === undefined ? '' : `, outcome ${e(filters.outcome)}`}, newest first</caption><thead><tr><th scope="col">Run</th><th scope="col">Runbook</th><th scope="col">Outcome</th><th scope="col">Trigger</th><th scope="col">Started (UTC)</th><th scope="col">Duration</th><th scope="col">Counts</th></tr></thead><tbody>${rows === '' ? '<tr><td colspan="7">No run matches.</td></tr>' : rows}</tbody></table></section>`;
}

function remediationsSection(status: EstateStatus): string {
  const rows = status.openRemediations
    .map((open) => `<tr><td>${e(open.targetId.split('/').at(-1) ?? open.targetId)}</td><td>${e(open.trigger)}</td><td><time datetime="${e(open.until)}">${e(open.until)}</time></td><td>${open.ladders.length === 0 ? 'no rule' : open.ladders.map((ladder) => `${e(ladder.rule)}: <ol class="ladder">${ladder.rungs.map((rung) => `<li>${e(rung)}</li>`).join('')}</ol>`).join('')}</td></tr>`)
    .join('');
  return `<section id="open-remediations" aria-labelledby="open-h"><h2 id="open-h">Open remediations</h2><table><caption>Ladders running now (the guardrails' running claim on a target)</caption><thead><tr><th scope="col">Target</th><th scope="col">Trigger</th><th scope="col">Claim until</th><th scope="col">Ladder (rungs in order)</th></tr></thead><tbody>${rows === '' ? '<tr><td colspan="4">None open.</td></tr>' : rows}</tbody></table></section>`;
}

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:72rem;padding:1rem;color:#111;line-height:1.4}
h1{font-size:1.5rem}.decision{padding:.75rem 1rem;border:3px solid;font-size:1.4rem;font-weight:700}
.decision-go{border-color:#1a7f37;background:#e6f4ea}.decision-no-go{border-color:#b42318;background:#fde8e6}
.verdict,.result{display:inline-block;padding:0 .4rem;border:2px solid;font-weight:700;font-size:.85em}
.verdict-pass,.result-pass{border-color:#1a7f37;color:#0b4f21}.verdict-fail,.result-fail{border-color:#b42318;color:#7a1410;border-style:double;border-width:3px}.result-info{border-color:#555;color:#333;border-style:dashed}
.item{border-left:6px solid #999;padding:.25rem 1rem;margin:1rem 0}.item-pass{border-left-color:#1a7f37}.item-fail{border-left-color:#b42318}
table{border-collapse:collapse;margin:.5rem 0;width:100%;font-size:.9rem}th,td{border:1px solid #bbb;padding:.25rem .4rem;text-align:left;vertical-align:top}caption{text-align:left;font-weight:600;padding:.25rem 0}
small{font-weight:400;color:#444}.legend{list-style:none;padding:0;display:flex;gap:1rem;flex-wrap:wrap}.swatch{display:inline-block;width:1rem;height:.8rem;border:2px solid;margin-right:.3rem;vertical-align:middle}
.swatch-hatched{background:repeating-linear-gradient(45deg,#fff 0 2px,#999 2px 4px)}.swatch-dotted{background:radial-gradient(#999 30%,#fff 31%) 0 0/4px 4px}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}a{color:#0645ad}:focus{outline:3px solid #1f6feb}
.charts{display:grid;grid-template-columns:1fr;gap:1rem}@media(min-width:70rem){.charts{grid-template-columns:1fr 1fr}}
`;

/** Options of {@link renderStatusPage}. */
export interface PageOptions {
  /** Where the filter form submits (the page's own path). Default `""` (the same URL). */
  readonly formAction?: string;
}

/** The status page of one estate, as a complete HTML document. */
export function renderStatusPage(status: EstateStatus, options: PageOptions = {}): string {
  const go = status.decision === 'go';
  const drills = status.history.drills;
  const backups = status.history.backupAge;
  const backupServers = [...new Set(backups.map((point) => point.server))];
  const backupTimes = [...new Set(backups.map((point) => point.at))];
  const shapes: Series['style'][] = ['circle', 'square', 'triangle'];
  const palette = ['#1f4e9c', '#b35900', '#5b2a86'];
  const hours = (value: number): string => `${value.toFixed(1)} h`;
  const seconds = (value: number): string => formatSeconds(value);
  const charts = [
    chart({
      id: 'chart-drills',
      title: 'Restore drills: RTO and RPO over time',
      description: 'Measured recovery time and recovery point of each drill, with the targets as dashed lines.',
      unit: 's',
      categoryHeader: 'Drill started (UTC)',
      categories: drills.map((drill) => `${drill.at}${drill.server === '' ? '' : ` ${drill.server}`}`),
      kind: 'points',
      format: seconds,
      series: [
        { name: 'RTO', values: drills.map((drill) => drill.rtoSeconds), style: 'circle', colour: palette[0] ?? '#000', target: drills.at(-1)?.rtoTargetSeconds ?? null },
        { name: 'RPO', values: drills.map((drill) => drill.rpoSeconds), style: 'square', colour: palette[1] ?? '#000', target: drills.at(-1)?.rpoTargetSeconds ?? null },
      ],
    }),
    chart({
      id: 'chart-backup-age',
      title: 'Newest backup age at each backup-verify run',
      description: 'Age of the newest completed backup of each server when backup-verify checked it, with the limit as a dashed line.',
      unit: 'h',
      categoryHeader: 'backup-verify run (UTC)',
      categories: backupTimes,
      kind: 'points',
      format: hours,
      series: backupServers.map((server, index) => ({
        name: server,
        values: backupTimes.map((at) => backups.find((point) => point.at === at && point.server === server)?.ageHours ?? null),
        style: shapes[index % shapes.length] ?? 'circle',
        colour: palette[index % palette.length] ?? '#000',
        target: backups.filter((point) => point.server === server).at(-1)?.limitHours ?? null,
      })),
    }),
    chart({
      id: 'chart-remediations',
      title: 'Remediations per day by outcome',
      description: 'Remediation runs of each UTC day: succeeded, failed, and other outcomes (refused, cancelled, findings).',
      unit: 'runs',
      categoryHeader: 'Day (UTC)',
      categories: status.history.remediationsPerDay.map((entry) => entry.day),
      kind: 'bars',
      series: [
        { name: 'succeeded', values: status.history.remediationsPerDay.map((entry) => entry.ok), style: 'solid', colour: '#1a7f37' },
        { name: 'failed', values: status.history.remediationsPerDay.map((entry) => entry.failed), style: 'hatched', colour: '#b42318' },
        { name: 'other', values: status.history.remediationsPerDay.map((entry) => entry.other), style: 'dotted', colour: '#555555' },
      ],
    }),
    chart({
      id: 'chart-cleaned',
      title: 'Tags and revisions cleaned per day',
      description: 'Container Apps revisions deactivated (revision-cleanup) and registry tags and manifests deleted (image-purge) each UTC day.',
      unit: 'items',
      categoryHeader: 'Day (UTC)',
      categories: status.history.cleanedPerDay.map((entry) => entry.day),
      kind: 'bars',
      series: [
        { name: 'revisions deactivated', values: status.history.cleanedPerDay.map((entry) => entry.revisions), style: 'solid', colour: '#1f4e9c' },
        { name: 'tags and manifests deleted', values: status.history.cleanedPerDay.map((entry) => entry.tags), style: 'hatched', colour: '#b35900' },
      ],
    }),
  ];
  const blocking = status.blocking.length === 0 ? '' : `<p>Blocked by: ${status.blocking.map((id) => `<a href="#item-${id}">${e(status.items.find((item) => item.id === id)?.title ?? id)}</a>`).join(', ')}.</p>`;
  const problems = status.problems.length === 0 ? '' : `<section aria-labelledby="problems-h"><h2 id="problems-h">Reads that failed</h2><ul>${status.problems.map((problem) => `<li>${e(problem)}</li>`).join('')}</ul></section>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer"><title>${go ? 'GO' : 'NO-GO'}: ${e(status.estate)} release status (Ops Autopilot)</title><style>${STYLE}</style></head>
<body><header><h1>Release status of estate ${e(status.estate)}</h1><p>As of <time datetime="${e(status.generatedAt)}">${e(status.generatedAt)}</time>. ${e(status.rule)}</p></header>
<main>
<section aria-labelledby="decision-h"><h2 id="decision-h" class="decision decision-${status.decision}" data-decision="${status.decision}">${go ? 'GO: every critical item is done' : 'NO-GO: the release is blocked'}</h2>${blocking}</section>
<section aria-labelledby="items-h"><h2 id="items-h">Checklist items</h2>${status.items.map(itemSection).join('')}</section>
${problems}
<section aria-labelledby="charts-h"><h2 id="charts-h">History and trends</h2><div class="charts">${charts.join('')}</div></section>
${runsSection(status, options.formAction ?? '')}
${remediationsSection(status)}
</main><footer><p>Ops Autopilot. The same evidence as JSON: <code>GET /api/status</code>; in a terminal: <code>ops-autopilot status --config &lt;file&gt;</code>.</p></footer></body></html>
`;
}
