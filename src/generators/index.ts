export type { CodeGenerator, ErrorFeedback, GeneratedCode, GenerationRequest, TokenUsage } from './code-generator.js';
export { createCodeGenerator } from './factory.js';
export { MOCK_BEHAVIOR_NAMES, MOCK_BEHAVIORS, MockGenerator } from './mock-generator.js';
export type { MockBehavior, MockGeneratorOptions } from './mock-generator.js';
