// Package nolayer is in no layer.
package nolayer
