export { createFileTransport, type FileTransportOptions } from './file-transport.js';
export { isRequestFile, type QueueDirs, queueDirs } from './queue-dirs.js';
