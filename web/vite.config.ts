import { defineConfig } from 'vite';

// The build goes where GOODSEED_WEB_OUT says (goodseed-server's build script points it
// into Cargo's OUT_DIR), or to dist/ for a manual `npm run build`.
export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: process.env.GOODSEED_WEB_OUT ?? 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8765' },
  },
});
