#!/usr/bin/env node
// Placeholder entry point; commands are added as the layers land.
console.log('depot: usage: depot serve | coap');
