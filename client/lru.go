package client

import (
	"container/list"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/repo"
)

// repoStates is the bounded per-repository state a verifying Subscriber
// keeps (rev and data of the last accepted commit), least recently used
// first out. A repository evicted is verified next time as one never seen
// (no chain check). Not safe for concurrent use.
type repoStates struct {
	max   int
	ll    *list.List
	items map[syntax.DID]*list.Element
}

type stateEntry struct {
	did   syntax.DID
	state repo.RepoState
}

func newRepoStates(max int) *repoStates {
	return &repoStates{max: max, ll: list.New(), items: make(map[syntax.DID]*list.Element)}
}

func (s *repoStates) get(did syntax.DID) (repo.RepoState, bool) {
	el, ok := s.items[did]
	if !ok {
		return repo.RepoState{}, false
	}
	s.ll.MoveToFront(el)
	return el.Value.(*stateEntry).state, true
}

func (s *repoStates) put(did syntax.DID, st repo.RepoState) {
	if el, ok := s.items[did]; ok {
		el.Value.(*stateEntry).state = st
		s.ll.MoveToFront(el)
		return
	}
	s.items[did] = s.ll.PushFront(&stateEntry{did: did, state: st})
	for s.ll.Len() > s.max {
		last := s.ll.Back()
		s.ll.Remove(last)
		delete(s.items, last.Value.(*stateEntry).did)
	}
}

func (s *repoStates) remove(did syntax.DID) {
	if el, ok := s.items[did]; ok {
		s.ll.Remove(el)
		delete(s.items, did)
	}
}

func (s *repoStates) len() int { return s.ll.Len() }
