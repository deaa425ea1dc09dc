"""Tools that learn the data files in ganfit/data (landmark embeddings, landmark tables); they sit with the
evaluations, above fitting, and nothing imports them."""
