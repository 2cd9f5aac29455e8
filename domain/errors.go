// Package domain holds partnerd's aggregates, their events and rules. It is
// pure Go: no I/O, no clock (time comes in as an argument), no project imports.
package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel rule violations. Handlers wrap them with context; the HTTP layer
// maps them to status codes in one place with errors.Is/As.
var (
	// ErrNotFound: the aggregate does not exist (in this program).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an aggregate with this ID exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the command is not legal in the aggregate's current state.
	ErrConflict = errors.New("conflict")
)

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a command at once.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// problems collects field errors while validating.
type problems []FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was added.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Fields: p}
}
