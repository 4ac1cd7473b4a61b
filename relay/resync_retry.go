package relay

import (
	"container/heap"
	"time"
)

// A failed resync is retried on a timer, not only when the account's next
// event arrives: an account whose PDS failed once (a 500, a timeout, a
// restart) would otherwise stay desynchronized until it posts again, and a
// quiet account could stay so for days. Each failure (see backOffLocked)
// schedules the next attempt at the end of the account's backoff
// (ResyncBackoff, doubling up to MaxResyncBackoff); retryLoop requests it
// then, through the same bounded queue as every other resync. The schedule
// holds at most one entry per account in backoff, and the backoff map is
// bounded, so the schedule is too.

// resyncBackoff is an account's resync failures: how many, and when the
// next attempt may run. While it waits for that attempt it sits in the
// retry schedule (index ≥ 0).
type resyncBackoff struct {
	did      string
	host     string // the host the failed resync was asked for
	failures int
	next     time.Time
	index    int // in Ingest.retries; -1 when not scheduled
}

// retrySchedule is a min-heap of backoffs by their next attempt.
type retrySchedule []*resyncBackoff

func (s retrySchedule) Len() int           { return len(s) }
func (s retrySchedule) Less(i, j int) bool { return s[i].next.Before(s[j].next) }
func (s retrySchedule) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index, s[j].index = i, j
}
func (s *retrySchedule) Push(x any) {
	b := x.(*resyncBackoff)
	b.index = len(*s)
	*s = append(*s, b)
}
func (s *retrySchedule) Pop() any {
	old := *s
	b := old[len(old)-1]
	old[len(old)-1] = nil
	*s = old[:len(old)-1]
	b.index = -1
	return b
}

// backOffLocked records a failed resync of did (asked for host) and
// schedules the next attempt.
func (in *Ingest) backOffLocked(did, host string) {
	b := in.backoff[did]
	if b == nil {
		if len(in.backoff) >= in.opts.MaxPendingResyncs {
			for k := range in.backoff { // forget one: the map stays bounded
				in.forgetBackoffLocked(k)
				break
			}
		}
		b = &resyncBackoff{did: did, index: -1}
		in.backoff[did] = b
	}
	b.host = host
	b.failures++
	wait := in.opts.ResyncBackoff << min(b.failures-1, 20)
	if wait <= 0 || wait > in.opts.MaxResyncBackoff {
		wait = in.opts.MaxResyncBackoff
	}
	in.scheduleRetryLocked(b, in.opts.Now().Add(wait))
}

// scheduleRetryLocked (re)places b in the retry schedule at next.
func (in *Ingest) scheduleRetryLocked(b *resyncBackoff, next time.Time) {
	b.next = next
	if b.index >= 0 {
		heap.Fix(&in.retries, b.index)
	} else {
		heap.Push(&in.retries, b)
	}
	if in.retries[0] == b {
		select { // the earliest attempt moved: wake retryLoop
		case in.retryWake <- struct{}{}:
		default:
		}
	}
}

// forgetBackoffLocked drops did's backoff (its resync succeeded, or the map
// is full) and its scheduled retry.
func (in *Ingest) forgetBackoffLocked(did string) {
	b := in.backoff[did]
	if b == nil {
		return
	}
	if b.index >= 0 {
		heap.Remove(&in.retries, b.index)
	}
	delete(in.backoff, did)
}

// retryLoop requests the scheduled resyncs as they fall due, until Close.
// A retry the full resync queue refuses is scheduled again one
// ResyncBackoff later, without counting as a failure.
func (in *Ingest) retryLoop() {
	defer in.resyncers.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		in.mu.Lock()
		var due *resyncBackoff
		wait := time.Hour
		if len(in.retries) > 0 {
			b := in.retries[0]
			if d := b.next.Sub(in.opts.Now()); d > 0 {
				wait = d
			} else {
				heap.Pop(&in.retries)
				due = b
			}
		}
		in.mu.Unlock()

		if due != nil {
			in.m.resyncRetries.Inc()
			in.log.Debug("retrying resync", "did", due.did, "host", due.host, "failures", due.failures)
			if !in.requestResync(due.did, due.host, true) {
				in.mu.Lock()
				if !in.closing && in.backoff[due.did] == due && due.index < 0 {
					in.scheduleRetryLocked(due, in.opts.Now().Add(in.opts.ResyncBackoff))
				}
				in.mu.Unlock()
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-in.resyncCtx.Done():
			return
		case <-in.retryWake:
		case <-timer.C:
		}
	}
}
