package queue

import "slices"

// JobStates lists River's job states in the order status prints them (the keys of Status.Jobs).
func JobStates() []string { return slices.Clone(jobStates) }
