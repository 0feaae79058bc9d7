"""scenegrep's command line: parses arguments, calls the pipeline, formats output."""
