"""Measures of stored points: each a pure function of flat parameter vectors and an Objective."""
