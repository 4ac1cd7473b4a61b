package directory

import "sync"

// keyedMutex serializes work per key (a DID) without a lock per DID ever
// stored: entries live only while someone holds or waits for them.
type keyedMutex struct {
	mu struct {
		sync.Mutex
		m map[string]*keyLock
	}
}

type keyLock struct {
	sync.Mutex
	refs int // holders and waiters; guarded by keyedMutex.mu
}

// lock blocks until key is free and returns the function that frees it.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.mu.m == nil {
		k.mu.m = make(map[string]*keyLock)
	}
	l := k.mu.m[key]
	if l == nil {
		l = &keyLock{}
		k.mu.m[key] = l
	}
	l.refs++
	k.mu.Unlock()

	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.mu.m, key)
		}
		k.mu.Unlock()
	}
}
