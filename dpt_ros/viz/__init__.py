"""Pictures for people: colour maps for depth, the ADE20K names and palette."""
