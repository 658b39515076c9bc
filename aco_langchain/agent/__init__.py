"""Agent controls, free of any chat model: per-step routing, the tool and verification gates,
doom detection, and the seed's ``ACOOptimizer`` facade."""
