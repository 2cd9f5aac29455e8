package app_test

import (
	"github.com/partnerd/partnerd/commands"
)

func createProgram(id string) commands.CreateProgram { return commands.CreateProgram{ProgramID: id} }
func meta() commands.Meta                            { return commands.Meta{Actor: "test"} }
