// Package cluster coordinates replicas of dvcr serve that share one storage
// (S3) through the Kubernetes API only: Leases in one namespace, no other
// database and no consensus of its own.
//
//   - Every replica holds the Lease dvcr-replica-<name> and renews it. A
//     replica that could not renew it and read the GC state for the renew
//     deadline refuses writes on its own (it "fences itself") until it can
//     again. The renew deadline is shorter than the lease duration, so a
//     replica cut off from the API server has stopped taking writes before
//     the others take it for gone.
//   - The scheduled garbage collection and verification and the
//     provisioning controller run on the holder of the Lease dvcr-leader
//     (client-go leader election, Elector; a single registry in a pod with
//     provisioning is elected on the same Lease).
//   - A collection publishes its window in the Lease dvcr-gc (annotation
//     dvcr.deckhouse.io/gc-window: <run>, renewed by the collecting replica
//     while the window lasts). Each replica watches it: it refuses writes at
//     once, waits for its writes in flight, and then acknowledges by writing
//     the run into its own Lease (dvcr.deckhouse.io/gc-ack). The collector
//     deletes nothing before every replica whose Lease is live has
//     acknowledged; one that is gone (its Lease expired, plus a margin for
//     clock drift) has fenced itself and is not waited for; one that renews
//     its Lease but does not acknowledge within the wait aborts the run — it
//     is never skipped.
//   - A replica first renews its own Lease, then reads the GC state, and
//     takes writes only after both. The collector publishes the window
//     first, then lists the replicas' Leases. The API server orders these
//     writes and reads, so a replica that did not see the window is seen by
//     the collector, which waits for it; a replica starting during a window
//     sees it and joins read-only.
//   - When the window ends (the annotation is removed, or the dvcr-gc Lease
//     expires because the collecting replica died) every replica drops its
//     caches, so none serves a blob the collection removed, and takes writes
//     again. A collecting replica that cannot renew dvcr-gc for the renew
//     deadline stops deleting.
package cluster
