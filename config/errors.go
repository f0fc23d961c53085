package config

import (
	"errors"
	"fmt"
)

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("invalid configuration")

// KeyError names the configuration key that holds an invalid value.
type KeyError struct {
	Key    string
	Value  any
	Reason string
}

func (e *KeyError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("%s: %s", e.Key, e.Reason)
	}
	return fmt.Sprintf("%s: invalid value %q: %s", e.Key, fmt.Sprint(e.Value), e.Reason)
}

func keyError(key string, value any, reason string) error {
	return &KeyError{Key: key, Value: value, Reason: reason}
}
