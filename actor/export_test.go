package actor

// Clones returns how many shards s has cloned for copy-on-write since
// NewState. Read it only where s is not being written (after Stop for an
// actor's State).
func (s *State) Clones() uint64 { return s.clones }

// Clones returns the copy-on-write clones of the actor's State. Call it
// only after Stop: the owner goroutine no longer touches the State then.
func (a *Actor) Clones() uint64 { return a.state.Clones() }
