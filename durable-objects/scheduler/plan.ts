// One scheduling round: pending pods in queue order, each filtered and scored against the
// snapshot, the winner assumed into the snapshot before the next pod (kube-scheduler's
// scheduleOne loop, run as a batch plan in the spirit of Nomad's scheduler).
//
// Like kube-scheduler, a pod does not look at every node in a large cluster: it checks
// nodes from a rotating start index until numFeasibleNodesToFind() of them fit (or all
// were checked), scores those and takes the best. The start index moves on by the
// number of nodes checked, so consecutive pods look at different parts of the cluster.
// A pod is found unschedulable only after every node was checked.
//
// Cost: O(pods x nodes scored) with O(1) filters and scores per node for typical pods
// (counts kept in NodeInfo), independent of the number of pods already placed.
//
// Pure module: no runtime APIs, safe in workerd and Node.

import type { Obj } from "../controllers/types.ts";
import { compilePod, runFilters } from "./filter.ts";
import { scorePodInfo } from "./score.ts";
import { addPod, hash32, type NodeInfo, type Snapshot } from "./snapshot.ts";

export interface Plan {
  bindings: { pod: Obj; node: string }[];
  unschedulable: { pod: Obj; message: string }[];
}

/** ErrNoNodesAvailable */
export const NO_NODES_MESSAGE = "no nodes available to schedule pods";

const MIN_FEASIBLE_NODES_TO_FIND = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5;

/**
 * kube-scheduler's numFeasibleNodesToFind: all nodes below 100; else percentage of them
 * (adaptive when 0: 50% minus 1% per 125 nodes, at least 5%), and at least 100.
 * 5,000 nodes -> 10% = 500.
 */
export function numFeasibleNodesToFind(total: number, percentageOfNodesToScore = 0): number {
  if (total < MIN_FEASIBLE_NODES_TO_FIND) return total;
  let percentage = percentageOfNodesToScore;
  if (percentage <= 0) {
    percentage = 50 - Math.trunc(total / 125);
    if (percentage < MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND) percentage = MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND;
  }
  if (percentage >= 100) return total;
  const n = Math.trunc((total * percentage) / 100);
  return n < MIN_FEASIBLE_NODES_TO_FIND ? MIN_FEASIBLE_NODES_TO_FIND : n;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function priorityOf(pod: Obj): number {
  const p = pod?.spec?.priority;
  return typeof p === "number" && Number.isFinite(p) ? p : 0;
}

function strField(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** Queue order: priority descending, then creationTimestamp, then name (then namespace). */
export function comparePods(a: Obj, b: Obj): number {
  return (
    priorityOf(b) - priorityOf(a) ||
    compareStrings(strField(a?.metadata?.creationTimestamp), strField(b?.metadata?.creationTimestamp)) ||
    compareStrings(strField(a?.metadata?.name), strField(b?.metadata?.name)) ||
    compareStrings(strField(a?.metadata?.namespace), strField(b?.metadata?.namespace))
  );
}

/** murmur3's 32-bit finalizer: spreads the bits of h. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FitError.Error(): "0/5 nodes are available: 2 node(s) had untolerated taint {a: b}, 3 Insufficient cpu." */
export function fitErrorMessage(numAllNodes: number, reasons: Map<string, number>): string {
  if (numAllNodes === 0) return NO_NODES_MESSAGE;
  // Like kube: "<count> <reason>" strings sorted as strings (sort.Strings).
  const parts = [...reasons].map(([reason, count]) => `${count} ${reason}`).sort(compareStrings);
  let msg = `0/${numAllNodes} nodes are available:`;
  if (parts.length > 0) msg += ` ${parts.join(", ")}.`;
  return msg;
}

/**
 * Schedules pending pods in order (priority desc, then creationTimestamp, then name)
 * against the snapshot, assuming each placement before the next pod (the snapshot is
 * updated in place). Ties among equal scores are broken deterministically from seed:
 * the node with the highest hash(seed, pod uid, node name) wins. Unschedulable pods get
 * kube's message: "0/5 nodes are available: 2 node(s) had untolerated taint {a: b}, 3
 * Insufficient cpu." (one count per reason per node, "<count> <reason>" sorted as strings).
 */
export function plan(pending: Obj[], snapshot: Snapshot, seed: number): Plan {
  const result: Plan = { bindings: [], unschedulable: [] };
  const nodes = snapshot.nodes;
  const total = nodes.length;
  const order = [...pending].sort(comparePods);
  const want = numFeasibleNodesToFind(total);
  const seedStr = `${seed}`;
  let next = total > 0 ? hash32(`start/${seedStr}`) % total : 0;

  for (const pod of order) {
    if (total === 0) {
      result.unschedulable.push({ pod, message: NO_NODES_MESSAGE });
      continue;
    }
    const info = compilePod(pod);
    const md = pod?.metadata ?? {};
    const podHash = hash32(`${seedStr}/${strField(md.uid) || `${strField(md.namespace)}/${strField(md.name)}`}`);

    let best: NodeInfo | null = null;
    let bestScore = Number.NEGATIVE_INFINITY;
    let bestTie = 0;
    let found = 0;
    let checked = 0;
    let reasons: Map<string, number> | null = null;
    let idx = next;
    while (checked < total && found < want) {
      const ni = nodes[idx];
      checked++;
      if (++idx === total) idx = 0;
      const fail = runFilters(info, ni);
      if (fail !== null) {
        reasons ??= new Map();
        if (typeof fail === "string") reasons.set(fail, (reasons.get(fail) ?? 0) + 1);
        else for (const r of fail) reasons.set(r, (reasons.get(r) ?? 0) + 1);
        continue;
      }
      found++;
      const score = scorePodInfo(info, ni, snapshot);
      if (score > bestScore) {
        best = ni;
        bestScore = score;
        bestTie = -1;
      } else if (score === bestScore && best !== null) {
        if (bestTie < 0) bestTie = mix32(podHash ^ best.nameHash);
        const tie = mix32(podHash ^ ni.nameHash);
        if (tie > bestTie || (tie === bestTie && ni.name < best.name)) {
          best = ni;
          bestTie = tie;
        }
      }
    }
    next = (next + checked) % total;

    if (best === null) {
      result.unschedulable.push({ pod, message: fitErrorMessage(total, reasons ?? new Map()) });
      continue;
    }
    addPod(snapshot, best, info);
    result.bindings.push({ pod, node: best.name });
  }
  return result;
}
