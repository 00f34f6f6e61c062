// Scoring: among the nodes that fit, which is best? Higher is better, 0..200.
//
//   score = leastAllocated + spread
//
//   leastAllocated (0..100), kube's NodeResourcesFit LeastAllocated with cpu and memory
//   weighted equally, counting the pod being placed and, for containers without
//   requests, kube's scoring defaults (100m cpu, 200Mi memory):
//     free(r)        = (allocatable(r) - nonZeroRequested(r) - podNonZero(r)) / allocatable(r)
//                      (0 when allocatable is 0 or the node would be over-committed)
//     leastAllocated = 100 * (free(cpu) + free(memory)) / 2
//
//   spread (0..100), in the spirit of kube's SelectorSpread (node and zone weighted 1:2).
//   n = pods of the same group already on the node, z = pods of the same group already in
//   the node's zone (topology.kubernetes.io/zone); a group is the pod's controller
//   ownerReference uid, or namespace + labels for a pod without a controller:
//     node with a zone:    spread = 100 * (1/3 * 1/(1+n) + 2/3 * 1/(1+z))
//     node without a zone: spread = 100 * 1/(1+n)
//   An empty node in an empty zone scores 100; the first replica on a node halves the
//   node part, the first in a zone halves the zone part, so replicas of a ReplicaSet go
//   to fresh zones first, then to fresh nodes, then double up evenly.
//
// Both parts are per node (no normalization over the candidates), so a node's score
// depends only on the snapshot: O(1) per node with the counts kept in NodeInfo/Snapshot.
//
// Pure module: no runtime APIs, safe in workerd and Node.

import type { Obj } from "../controllers/types.ts";
import { type NodeInfo, type PodInfo, podInfo, type Snapshot } from "./snapshot.ts";

export const MAX_NODE_SCORE = 100;
export const NODE_SPREAD_WEIGHT = 1 / 3;
export const ZONE_SPREAD_WEIGHT = 2 / 3;

function freeFraction(allocatable: number, requested: number): number {
  if (allocatable <= 0 || requested > allocatable) return 0;
  return (allocatable - requested) / allocatable;
}

/** 0..100: how much cpu and memory (averaged) stays free on the node after placing the pod. */
export function leastAllocatedScore(pod: PodInfo, ni: NodeInfo): number {
  const a = ni.allocatable;
  const used = ni.nonZeroRequested;
  const want = pod.nonZeroRequests;
  const cpu = freeFraction(a.milliCPU, used.milliCPU + want.milliCPU);
  const mem = freeFraction(a.memory, used.memory + want.memory);
  return (MAX_NODE_SCORE * (cpu + mem)) / 2;
}

/** 0..100: fewer pods of the same group on the node and in its zone score higher. */
export function spreadScore(pod: PodInfo, ni: NodeInfo, snapshot: Snapshot): number {
  const n = ni.spreadCounts.get(pod.spreadKey) ?? 0;
  if (ni.zone === undefined) return MAX_NODE_SCORE / (1 + n);
  const z = snapshot.zoneSpreadCounts.get(ni.zone)?.get(pod.spreadKey) ?? 0;
  return MAX_NODE_SCORE * (NODE_SPREAD_WEIGHT / (1 + n) + ZONE_SPREAD_WEIGHT / (1 + z));
}

/** score on a precomputed PodInfo (plan()'s hot path). */
export function scorePodInfo(pod: PodInfo, ni: NodeInfo, snapshot: Snapshot): number {
  return leastAllocatedScore(pod, ni) + spreadScore(pod, ni, snapshot);
}

/** 0..200: leastAllocated + spread (see the formula above). Call only for nodes that fit. */
export function scoreNode(pod: Obj, nodeInfo: NodeInfo, snapshot: Snapshot): number {
  return scorePodInfo(podInfo(pod), nodeInfo, snapshot);
}
