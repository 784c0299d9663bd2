// Package testdb is test support.
package testdb
