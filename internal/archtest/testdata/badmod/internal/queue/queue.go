package queue

import _ "example.com/badmod/internal/secret"

// Jobs is a service's export.
const Jobs = 1
