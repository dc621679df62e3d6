"""The plan harness: the program for a stack under the Pulumi SDK's mocks, as resources with inputs and options."""
